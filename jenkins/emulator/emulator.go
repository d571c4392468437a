// Package emulator is an HTTP emulator of the Jenkins endpoints agentforge
// uses: the demo runs it as an embedded service, and jenkinstest wraps it
// for tests. It behaves like Jenkins where clients trip: HTML error pages,
// 401 with a Basic challenge, 403 for anonymous users and missing
// permissions, session-bound CSRF crumbs (API tokens skip them), and
// /scriptText answering 200 with a stack trace when a script throws.
//
// /scriptText really runs the posted script with Groovy 2.4 (Debian's groovy
// package, the version Jenkins bundles) against stubs of jenkins.model.Jenkins,
// hudson.slaves.Cloud and the Kubernetes plugin's classes, which follow the
// real method signatures (each stub cites its source, file and line). The
// stubs are embedded in the binary and compiled once into the user's cache
// directory; they keep their state in a JSON file between requests.
//
// With a configuration-as-code file (Options.CascFile), POST
// /configuration-as-code/reload applies the file's jenkins.clouds the way
// the configuration-as-code plugin does: each cloud and template is built
// afresh through the stubs' constructors and setters, and the list replaces
// the clouds Jenkins had.
package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentforge/agentforge/jenkins/version"
)

// User is a Jenkins account.
type User struct {
	Name     string
	Password string
	Token    string
	// Admin grants Overall/Administer (the script console).
	Admin bool
}

// Options configure the emulator. The zero value is a secured Jenkins with
// CSRF protection, the Kubernetes plugin and no users.
type Options struct {
	Users   []User
	Version string // X-Jenkins; default 2.555.1, the 2026 LTS line (it refuses Java 17 agents)
	// NoCSRF turns the crumb issuer off (404), as DISABLE_CSRF_PROTECTION does.
	NoCSRF bool
	// NoKubernetesPlugin leaves the plugin's classes off the class path.
	NoKubernetesPlugin bool
	// KubernetesPluginVersion is the version the plugin manager reports;
	// default 4423.vb_59f230b_ce53. A version before 1.27.2 runs the scripts
	// against that release's PodTemplate (stubs-kubernetes-1.27.1: no id,
	// no PodTemplate(String id) constructor).
	KubernetesPluginVersion string
	// Casc reports the configuration-as-code plugin as installed (in the
	// plugin list, and its classes on the script console's class path).
	Casc bool
	// CascFile is the configuration-as-code source the controller reads
	// (CASC_JENKINS_CONFIG: a file or a folder of .yml/.yaml files); it
	// implies Casc. POST /configuration-as-code/reload applies it.
	CascFile string
	// CascEnv are the variables the configuration-as-code plugin resolves
	// ${NAME} against (the controller's environment); unknown names become "".
	CascEnv map[string]string
	// NoScriptConsole makes /scriptText answer 404, as a proxy that blocks it does.
	NoScriptConsole bool
	// State is the initial state of the clouds.
	State State
	// ScriptDelay makes /scriptText this much slower (a busy controller).
	ScriptDelay time.Duration
	// EchoHeaders makes POST /scriptText answer with this status and a page
	// that lists the request's headers (Authorization, the crumb, the
	// cookie), as a debugging proxy in front of Jenkins or a verbose error
	// page does: tests check that no credential comes back out.
	EchoHeaders int
}

// State is the Groovy stubs' persisted state.
type State struct {
	Saves  int     `json:"saves"`
	Clouds []Cloud `json:"clouds"`
}

// Cloud is a cloud in State; Kind "kubernetes" or another plugin's kind.
type Cloud struct {
	Kind      string           `json:"kind"`
	Name      string           `json:"name"`
	Templates []map[string]any `json:"templates,omitempty"`
	// Settings are a Kubernetes cloud's connection settings (serverUrl, namespace, ...).
	Settings map[string]any `json:"settings,omitempty"`
}

// Server is a running emulator.
type Server struct {
	// URL is the emulator's base URL, http://127.0.0.1:port.
	URL string

	opts      Options
	dir       string
	stateFile string
	classpath string
	runner    string
	srv       *http.Server
	ln        net.Listener

	mu       sync.Mutex
	sessions map[string]string // session id -> user
	nodes    map[string]string // node name -> config.xml
	// Scripts holds every script posted to /scriptText, in order.
	Scripts []string
	// Requests counts requests by "METHOD path".
	Requests map[string]int
	// CascReloads counts the configuration-as-code reloads that applied.
	CascReloads int
	issued      []string // crumbs and session ids handed out
}

// Start starts an emulator keeping its state under dir, which must exist.
// It needs Groovy (apt-get install groovy default-jre-headless). The caller
// closes it.
func Start(opts Options, dir string) (*Server, error) {
	if opts.Version == "" {
		opts.Version = "2.555.1"
	}
	if opts.KubernetesPluginVersion == "" {
		opts.KubernetesPluginVersion = "4423.vb_59f230b_ce53"
	}
	if opts.CascFile != "" {
		opts.Casc = true
	}
	parts := []part{partCore}
	switch {
	case opts.NoKubernetesPlugin:
	case version.Compare(opts.KubernetesPluginVersion, "1.27.2") < 0:
		parts = append(parts, partOld)
	default:
		parts = append(parts, partPlugin)
	}
	if opts.Casc {
		parts = append(parts, partCasc)
	}
	cp, err := classpath(parts...)
	if err != nil {
		return nil, err
	}
	runner, err := writeFile(dir, "runner.groovy")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, dir: dir, classpath: cp, runner: runner, ln: ln, sessions: map[string]string{}, nodes: map[string]string{}, Requests: map[string]int{}}
	s.stateFile = filepath.Join(dir, "jenkins-state.json")
	s.SetState(opts.State)
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 30 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the emulator: its listener and every open connection.
func (s *Server) Close() {
	s.srv.Close()
}

// State reads the stubs' current state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st State
	data, err := os.ReadFile(s.stateFile)
	if err == nil {
		json.Unmarshal(data, &st)
	}
	return st
}

// SetState replaces the stubs' state.
func (s *Server) SetState(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, _ := json.MarshalIndent(st, "", "  ")
	os.WriteFile(s.stateFile, data, 0o600)
}

// Issued returns the crumbs and session ids the emulator has handed out:
// secrets a client must not repeat in a message.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Node returns a node's config.xml, or "" when there is none.
func (s *Server) Node(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[name]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.Requests[r.Method+" "+r.URL.Path]++
	s.mu.Unlock()
	w.Header().Set("X-Jenkins", s.opts.Version)
	w.Header().Set("X-Jenkins-Session", "5f3a9c1e")
	if s.opts.EchoHeaders != 0 && r.URL.Path == "/scriptText" {
		echoHeaders(w, r, s.opts.EchoHeaders)
		return
	}
	user, byToken, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if user == nil {
		// Security is on and anonymous users may not read.
		htmlError(w, http.StatusForbidden, "Authentication required")
		return
	}
	path := r.URL.Path
	switch {
	case path == "/api/json" || path == "/api/json/":
		writeJSON(w, map[string]any{
			"_class": "hudson.model.Hudson", "mode": "NORMAL", "nodeDescription": "the Jenkins controller's built-in node",
			"nodeName": "", "numExecutors": 2, "useCrumbs": !s.opts.NoCSRF, "useSecurity": true, "url": s.URL + "/",
			"assignedLabels": []map[string]string{{"name": "built-in"}}, "jobs": []any{}, "views": []any{},
		})
	case strings.HasPrefix(path, "/crumbIssuer/api/json"):
		s.crumb(w, r, user)
	case path == "/pluginManager/api/json":
		plugins := []map[string]any{}
		if !s.opts.NoKubernetesPlugin {
			plugins = append(plugins, map[string]any{"shortName": "kubernetes", "active": true, "version": s.opts.KubernetesPluginVersion})
		}
		if s.opts.Casc {
			plugins = append(plugins, map[string]any{"shortName": "configuration-as-code", "active": true, "version": "2117.v4d3b_a_2ef6c8b_"})
		}
		writeJSON(w, map[string]any{"plugins": plugins})
	case path == "/scriptText":
		s.scriptText(w, r, user, byToken)
	case strings.HasPrefix(path, "/computer"):
		s.computer(w, r, user, byToken)
	case s.opts.Casc && strings.TrimSuffix(path, "/") == "/configuration-as-code/reload":
		s.cascReload(w, r, user, byToken)
	case s.opts.Casc && strings.TrimSuffix(path, "/") == "/configuration-as-code":
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Configuration as Code [Jenkins]</title></head><body>Configuration as Code</body></html>")
	default:
		htmlError(w, http.StatusNotFound, "Not Found")
	}
}

// authenticate reads Basic auth: an API token or a password. Wrong
// credentials get 401 with a Basic challenge and an HTML page.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*User, bool, bool) {
	name, secret, has := r.BasicAuth()
	if !has {
		return nil, false, true
	}
	for i := range s.opts.Users {
		u := &s.opts.Users[i]
		if u.Name != name {
			continue
		}
		if u.Token != "" && secret == u.Token {
			return u, true, true
		}
		if u.Password != "" && secret == u.Password {
			return u, false, true
		}
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
	htmlError(w, http.StatusUnauthorized, "Invalid password/token for user: "+name)
	return nil, false, false
}

func (s *Server) crumb(w http.ResponseWriter, r *http.Request, u *User) {
	if s.opts.NoCSRF {
		htmlError(w, http.StatusNotFound, "Not Found")
		return
	}
	session := ""
	if c, err := r.Cookie("JSESSIONID.emulator"); err == nil {
		session = c.Value
	}
	s.mu.Lock()
	if s.sessions[session] != u.Name {
		b := make([]byte, 12)
		rand.Read(b)
		session = hex.EncodeToString(b)
		s.sessions[session] = u.Name
	}
	crumb := crumbFor(u.Name, session)
	s.issued = append(s.issued, session, crumb)
	s.mu.Unlock()
	w.Header().Add("Set-Cookie", "JSESSIONID.emulator="+session+"; Path=/; HttpOnly")
	writeJSON(w, map[string]string{"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": crumb, "crumbRequestField": "Jenkins-Crumb"})
}

func crumbFor(user, session string) string {
	sum := sha256.Sum256([]byte(user + ";" + session + ";emulator-salt"))
	return hex.EncodeToString(sum[:])
}

// csrfOK applies Jenkins' CrumbFilter: API-token requests pass; others need
// the crumb of their session.
func (s *Server) csrfOK(w http.ResponseWriter, r *http.Request, u *User, byToken bool) bool {
	if s.opts.NoCSRF || byToken {
		return true
	}
	c, err := r.Cookie("JSESSIONID.emulator")
	s.mu.Lock()
	valid := err == nil && s.sessions[c.Value] == u.Name && r.Header.Get("Jenkins-Crumb") == crumbFor(u.Name, c.Value)
	s.mu.Unlock()
	if !valid {
		htmlError(w, http.StatusForbidden, "No valid crumb was included in the request")
	}
	return valid
}

// forbidden answers as Jenkins does a user who lacks a permission
// (AccessDeniedException3 through its handler: 403, the headers naming the
// user and the permission).
func forbidden(w http.ResponseWriter, u *User, permission, title string) {
	w.Header().Set("X-You-Are-Authenticated-As", u.Name)
	w.Header().Set("X-Required-Permission", permission)
	htmlError(w, http.StatusForbidden, u.Name+" is missing the "+title+" permission")
}

func (s *Server) scriptText(w http.ResponseWriter, r *http.Request, u *User, byToken bool) {
	if s.opts.NoScriptConsole {
		htmlError(w, http.StatusNotFound, "Not Found")
		return
	}
	if !u.Admin {
		forbidden(w, u, "hudson.model.Hudson.Administer", "Overall/Administer")
		return
	}
	if err := r.ParseForm(); err != nil {
		htmlError(w, http.StatusBadRequest, "Bad Request")
		return
	}
	script, has := r.Form["script"]
	if r.Method != http.MethodPost {
		if has {
			htmlError(w, http.StatusMethodNotAllowed, "This URL requires POST")
			return
		}
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		fmt.Fprint(w, "<html><body>Script Console</body></html>")
		return
	}
	if !s.csrfOK(w, r, u, byToken) {
		return
	}
	if !has {
		return
	}
	if s.opts.ScriptDelay > 0 {
		select {
		case <-time.After(s.opts.ScriptDelay):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Scripts = append(s.Scripts, script[0])
	out, err := s.runGroovy(script[0])
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	if err != nil {
		// The JVM itself failed: not something Jenkins would answer.
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(out)
}

// runGroovy runs one script with Groovy 2.4 against the stubs.
func (s *Server) runGroovy(script string) ([]byte, error) {
	return s.execGroovy(s.runner, script)
}

// RunConcurrently runs scripts at once, each on its own thread of one JVM
// against the stubs and this server's state, as Jenkins runs concurrent
// script console requests, and returns each one's output in order. The
// HTTP route runs one script at a time (a JVM each); this is how a test
// sees what two requests at the same moment do to each other.
func (s *Server) RunConcurrently(scripts []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runner, err := writeFile(s.dir, "threads.groovy")
	if err != nil {
		return nil, err
	}
	s.Scripts = append(s.Scripts, scripts...)
	out, err := s.execGroovy(runner, scripts...)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(out), "=== AGENTFORGE-SCRIPT ")
	if len(parts) != len(scripts)+1 {
		return nil, fmt.Errorf("groovy: %d outputs for %d scripts:\n%s", len(parts)-1, len(scripts), out)
	}
	outs := make([]string, len(scripts))
	for i, p := range parts[1:] {
		_, outs[i], _ = strings.Cut(p, "\n")
	}
	return outs, nil
}

// execGroovy runs the Groovy file runner on the stubs' class path with
// the scripts, each written to a file, as its arguments.
func (s *Server) execGroovy(runner string, scripts ...string) ([]byte, error) {
	args := []string{"-cp", s.classpath, runner}
	for _, sc := range scripts {
		f, err := os.CreateTemp(s.dir, "script-*.groovy")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		_, err = f.WriteString(sc)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		args = append(args, f.Name())
	}
	cmd := exec.Command("groovy", args...)
	cmd.Env = s.groovyEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("groovy: %v\n%s", err, stderr.String())
	}
	return out, nil
}

// computer serves the node endpoints CreateNode and friends use.
func (s *Server) computer(w http.ResponseWriter, r *http.Request, u *User, byToken bool) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/computer"), "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Nodes [Jenkins]</title></head><body>Nodes</body></html>")
	case rest == "doCreateItem" && r.Method == http.MethodPost:
		if !s.csrfOK(w, r, u, byToken) {
			return
		}
		if !u.Admin {
			htmlError(w, http.StatusForbidden, u.Name+" is missing the Agent/Create permission")
			return
		}
		name := r.URL.Query().Get("name")
		var spec struct {
			NodeDescription string `json:"nodeDescription"`
			RemoteFS        string `json:"remoteFS"`
			NumExecutors    any    `json:"numExecutors"`
			LabelString     string `json:"labelString"`
		}
		if err := json.Unmarshal([]byte(r.URL.Query().Get("json")), &spec); err != nil || name == "" {
			htmlError(w, http.StatusBadRequest, "Bad Request")
			return
		}
		s.mu.Lock()
		_, exists := s.nodes[name]
		if !exists {
			s.nodes[name] = fmt.Sprintf("<?xml version='1.1' encoding='UTF-8'?>\n<slave>\n  <name>%s</name>\n  <description>%s</description>\n  <remoteFS>%s</remoteFS>\n  <numExecutors>%v</numExecutors>\n  <mode>NORMAL</mode>\n  <retentionStrategy class=\"hudson.slaves.RetentionStrategy$Always\"/>\n  <launcher class=\"hudson.slaves.JNLPLauncher\"/>\n  <label>%s</label>\n  <nodeProperties/>\n</slave>\n",
				html.EscapeString(name), html.EscapeString(spec.NodeDescription), html.EscapeString(spec.RemoteFS), spec.NumExecutors, html.EscapeString(spec.LabelString))
		}
		s.mu.Unlock()
		if exists {
			htmlError(w, http.StatusBadRequest, "Agent called ‘"+name+"’ already exists")
			return
		}
		http.Redirect(w, r, "/computer/", http.StatusFound)
	default:
		name, sub, _ := strings.Cut(rest, "/")
		s.mu.Lock()
		cfg, exists := s.nodes[name]
		s.mu.Unlock()
		if !exists {
			htmlError(w, http.StatusNotFound, "Not Found")
			return
		}
		switch {
		case sub == "api/json" && r.Method == http.MethodGet:
			writeJSON(w, map[string]any{"_class": "hudson.slaves.SlaveComputer", "displayName": name, "offline": true, "jnlpAgent": true, "idle": true})
		case sub == "config.xml" && r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, cfg)
		case sub == "config.xml" && r.Method == http.MethodPost:
			if !s.csrfOK(w, r, u, byToken) {
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				htmlError(w, http.StatusBadRequest, "Bad Request")
				return
			}
			s.mu.Lock()
			s.nodes[name] = string(body)
			s.mu.Unlock()
		case sub == "doDelete" && r.Method == http.MethodPost:
			if !s.csrfOK(w, r, u, byToken) {
				return
			}
			s.mu.Lock()
			delete(s.nodes, name)
			s.mu.Unlock()
			http.Redirect(w, r, "/computer/", http.StatusFound)
		default:
			htmlError(w, http.StatusNotFound, "Not Found")
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

// echoHeaders answers with a page that repeats the request line and headers.
func echoHeaders(w http.ResponseWriter, r *http.Request, status int) {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html><html><head><title>Request</title></head><body><h1>%d %s</h1><pre>\n%s %s %s\n", status, http.StatusText(status), r.Method, r.URL.RequestURI(), r.Proto)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, html.EscapeString(v))
		}
	}
	b.WriteString("</pre></body></html>\n")
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

// htmlError answers like Jenkins: an HTML page, never JSON.
func htmlError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>Jenkins</title></head><body><h1>%s</h1><p>%s</p></body></html>", http.StatusText(status), html.EscapeString(msg))
}

// groovyEnv is the environment of a Groovy run: where the stubs keep their
// state, and the configuration-as-code sources.
func (s *Server) groovyEnv() []string {
	env := append(os.Environ(), "AGENTFORGE_JENKINS_STATE="+s.stateFile)
	if s.opts.CascFile != "" {
		env = append(env, "AGENTFORGE_CASC_SOURCES="+s.opts.CascFile)
	}
	return env
}
