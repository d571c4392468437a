package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// cascReload serves POST /configuration-as-code/reload as the plugin does
// (configuration-as-code-plugin ConfigurationAsCode.doReload, L169-191 at
// 58646eb6): @RequirePOST, Overall/Manage (403 without), the sources read
// again and applied, a redirect on success and the "Error loading
// configuration" page (status 200) when they do not apply. Only
// jenkins.clouds is modelled: it replaces the clouds Jenkins had.
func (s *Server) cascReload(w http.ResponseWriter, r *http.Request, u *User, byToken bool) {
	if r.Method != http.MethodPost {
		htmlError(w, http.StatusMethodNotAllowed, "HTTP method "+r.Method+" is not supported by this URL")
		return
	}
	if !s.csrfOK(w, r, u, byToken) {
		return
	}
	if !u.Admin {
		forbidden(w, u, "hudson.model.Hudson.Manage", "Overall/Manage")
		return
	}
	if err := s.applyCasc(); err != nil {
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>Error loading configuration [Jenkins]</title></head><body><h1>Error loading configuration</h1><p>%s</p></body></html>", htmlEscape(err.Error()))
		return
	}
	s.mu.Lock()
	s.CascReloads++
	s.mu.Unlock()
	http.Redirect(w, r, "/configuration-as-code/", http.StatusFound)
}

// ApplyCasc applies the configuration-as-code sources, as a restart of
// Jenkins does (ConfigurationAsCode.init).
func (s *Server) ApplyCasc() error { return s.applyCasc() }

func (s *Server) applyCasc() error {
	if s.opts.CascFile == "" {
		return nil
	}
	files, err := cascFiles(s.opts.CascFile)
	if err != nil {
		return err
	}
	var merged any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%s: %v", f, err)
		}
		if merged, err = mergeSources(merged, doc, ""); err != nil {
			return err
		}
	}
	top, _ := merged.(map[string]any)
	jenkins, _ := top["jenkins"].(map[string]any)
	clouds, ok := jenkins["clouds"]
	if !ok {
		// No jenkins.clouds: JCasC leaves the clouds alone.
		return nil
	}
	list, _ := clouds.([]any)
	data, err := json.Marshal(resolve(list, s.opts.CascEnv))
	if err != nil {
		return err
	}
	in := filepath.Join(s.dir, "casc-clouds.json")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		return err
	}
	script, err := writeFile(s.dir, "casc.groovy")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command("groovy", "-cp", s.classpath, script, in)
	cmd.Env = s.groovyEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("groovy: %v\n%s", err, out)
	}
	if msg, bad := strings.CutPrefix(strings.TrimSpace(string(out)), "ERROR "); bad {
		return errors.New(msg)
	}
	return nil
}

// cascFiles lists the YAML files of a source: the file, or the .yml/.yaml
// files under a folder that are not hidden, sorted (ConfigurationAsCode.configs).
func cascFiles(src string) ([]string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("Invalid configuration: '%s' isn't a valid path.", src)
	}
	if !st.IsDir() {
		return []string{src}, nil
	}
	var files []string
	err = filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			if strings.HasPrefix(part, ".") && part != "." {
				if info.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yml", ".yaml":
			if !info.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// mergeSources joins the documents of several source files as JCasC's
// default merge strategy does (errorOnConflict): mappings key by key,
// sequences concatenated, a scalar given twice differently an error.
func mergeSources(a, b any, at string) (any, error) {
	switch {
	case a == nil:
		return b, nil
	case b == nil:
		return a, nil
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for k, v := range bm {
			m, err := mergeSources(am[k], v, at+"."+k)
			if err != nil {
				return nil, err
			}
			am[k] = m
		}
		return am, nil
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		return append(as, bs...), nil
	}
	if fmt.Sprint(a) == fmt.Sprint(b) {
		return a, nil
	}
	return nil, fmt.Errorf("Found conflicting configuration at %s", strings.TrimPrefix(at, "."))
}

// resolve substitutes ${NAME} and ${NAME:-default} in every string from
// env (an unknown name becomes ""), and turns the escape ^${ into a
// literal ${, as JCasC's SecretSourceResolver does.
func resolve(v any, env map[string]string) any {
	switch v := v.(type) {
	case string:
		return resolveString(v, env)
	case []any:
		for i := range v {
			v[i] = resolve(v[i], env)
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = resolve(v[k], env)
		}
		return v
	}
	return v
}

func resolveString(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "^${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			value, ok := "", false
			if n, def, has := strings.Cut(name, ":-"); has {
				value, ok = env[n]
				if !ok || value == "" {
					value = def
				}
			} else {
				value = env[name]
			}
			b.WriteString(value)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;")
	return r.Replace(s)
}
