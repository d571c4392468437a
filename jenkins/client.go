// Package jenkins registers, reads and removes Kubernetes pod templates (and
// permanent inbound agents) in a Jenkins controller through gojenkins, by
// one of two routes:
//
//   - the script console: each operation posts one fixed, reviewed Groovy
//     script to /scriptText with the request as base64-encoded JSON in a
//     string literal, and reads back one machine-readable result line;
//   - configuration as code: the template merged into a JCasC YAML file (or
//     the jenkins Helm chart's values) field by field, then a JCasC reload.
//
// Updates change only the fields agentforge owns; what an admin added
// stays. The package knows nothing about images beyond a reference string.
// Package emulator is an HTTP emulator of the Jenkins endpoints used, which
// runs the scripts with Groovy 2.4 against stubs of the Jenkins and
// Kubernetes-plugin classes; jenkinstest starts it for tests.
package jenkins

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/agentforge/agentforge/images/httpget"
	"github.com/agentforge/agentforge/images/redact"
	"github.com/bndr/gojenkins"
	"github.com/sirupsen/logrus"
)

// Config says how to reach Jenkins. Token is an API token (or a password);
// it is sent only as HTTP basic auth and scrubbed from every message.
type Config struct {
	URL   string
	User  string
	Token string
	// Timeout bounds every request (and Client.New); 0 means 60 s.
	Timeout time.Duration
	// HTTPClient is used when set (custom TLS); its Timeout is left alone.
	HTTPClient *http.Client
	// CAFile is a PEM file of CA certificates trusted for Jenkins besides
	// the system's (a controller behind a private CA); not with HTTPClient.
	CAFile string
	Log    logrus.FieldLogger
	// Secrets, when set, is where the client records every credential it
	// sends (the token, crumbs, session cookies), so that the caller can
	// redact its own output too; nil means a set of the client's own.
	Secrets *redact.Set
}

// Client is a connection to one Jenkins controller.
type Client struct {
	cfg     Config
	j       *gojenkins.Jenkins
	req     *gojenkins.Requester
	http    *http.Client
	log     logrus.FieldLogger
	secrets *redact.Set
	Version string
}

// Error is Jenkins refusing a request: bad credentials, a missing
// permission, a missing cloud or plugin, a disabled script console.
type Error struct {
	// Status is the HTTP status, 0 when the refusal came from a script.
	Status int
	// Op names what was attempted.
	Op string
	// Reason is a short code: unauthorized, forbidden, no-such-cloud,
	// not-kubernetes, not-managed, plugin-missing, script-console, not-jenkins,
	// casc-managed, casc-missing, casc-reload, redirected.
	Reason string
	// Hint says what to do about it.
	Hint string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("jenkins refused %s: %s", e.Op, e.Reason)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// New checks the URL, connects (GET /api/json), and reads the Jenkins
// version. A 401 or 403 is an *Error with a hint.
func New(ctx context.Context, cfg Config) (_ *Client, err error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &InputError{Msg: fmt.Sprintf("jenkins URL %q: want http(s)://host[:port][/prefix]", httpget.RedactURL(cfg.URL))}
	}
	if u.User != nil {
		return nil, &InputError{Msg: "jenkins URL must not carry credentials: give the user and the token separately"}
	}
	if cfg.User == "" || cfg.Token == "" {
		return nil, &InputError{Msg: "a Jenkins user and API token are needed"}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	sec := cfg.Secrets
	if sec == nil {
		sec = redact.New()
	}
	sec.AddBasic(cfg.User, cfg.Token)
	// Every request goes through a transport that notes the credentials
	// it carries (the crumb and session cookie are learnt on the way).
	hc := &http.Client{Timeout: cfg.Timeout}
	switch {
	case cfg.HTTPClient != nil && cfg.CAFile != "":
		return nil, &InputError{Msg: "a CA file and an HTTP client of its own: give one"}
	case cfg.HTTPClient != nil:
		copied := *cfg.HTTPClient
		hc = &copied
	case cfg.CAFile != "":
		if hc.Transport, err = caTransport(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &redact.Transport{Base: base, Secrets: sec}
	hc.CheckRedirect = sameOrigin(hc.CheckRedirect)
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	c := &Client{cfg: cfg, http: hc, log: log, secrets: sec}
	defer func() { err = c.scrub(err) }()
	// gojenkins decodes error pages as JSON and reports "invalid character
	// '<'": look at the status ourselves first.
	if err := c.preflight(ctx); err != nil {
		return nil, err
	}
	c.j = gojenkins.CreateJenkins(hc, strings.TrimSuffix(cfg.URL, "/"), cfg.User, cfg.Token)
	// What gojenkins' Init does, less its first step: Init points the
	// package's global loggers at stdout (where our JSON goes), for every
	// client. None of the calls we make logs through them.
	c.j.Raw = new(gojenkins.ExecutorResponse)
	rsp, err := c.j.Requester.GetJSON(ctx, "/", c.j.Raw, nil)
	if err == nil && rsp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /api/json: %s", rsp.Status)
	}
	if err != nil {
		return nil, c.scrub(fmt.Errorf("connect to %s: %w", cfg.URL, err))
	}
	c.j.Version = rsp.Header.Get("X-Jenkins")
	r, ok := c.j.Requester.(*gojenkins.Requester)
	if !ok {
		return nil, fmt.Errorf("connect to %s: unexpected gojenkins requester %T", cfg.URL, c.j.Requester)
	}
	c.req = r
	c.Version = c.j.Version
	c.debugf("connected to Jenkins %s at %s", c.Version, cfg.URL)
	return c, nil
}

// CheckCAFile checks that file, a Config.CAFile, can be read and holds a
// PEM certificate: an *InputError if not. A caller that contacts Jenkins
// only after other work (release registers after publishing) calls it
// first, so that a wrong path is found before that work is done.
func CheckCAFile(file string) error {
	_, err := caTransport(file)
	return err
}

// caTransport is http.DefaultTransport trusting the CA certificates in
// the PEM file too.
func caTransport(file string) (*http.Transport, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("jenkins CA file: %v", err)}
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, &InputError{Msg: fmt.Sprintf("jenkins CA file %s: no PEM certificate in it", file)}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// sameOrigin is a CheckRedirect that refuses a redirect to another origin
// (scheme, host or port) than the request's, then asks next (nil: Go's
// limit of 10 redirects). net/http keeps the Authorization header on a
// redirect to the same host name whatever the port or scheme, https to
// http included, and the crumb header on any redirect
// (net/http/client.go, shouldCopyHeaderOnRedirect compares host names
// only): a redirect elsewhere would carry the API token, or the script,
// to another server.
func sameOrigin(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if from := via[0].URL; origin(req.URL) != origin(from) {
			return &crossOrigin{to: httpget.RedactURL(req.URL.String()), from: origin(from)}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// crossOrigin is sameOrigin's refusal of a redirect.
type crossOrigin struct{ to, from string }

func (e *crossOrigin) Error() string {
	return fmt.Sprintf("redirected to %s, another origin than %s: not followed, the credentials go to the Jenkins URL only (give Jenkins' own URL)", e.to, e.from)
}

// redirected is the *Error (reason redirected) for an error that holds
// sameOrigin's refusal, else err: a single sign-on proxy sending the
// request to its login page elsewhere is a refusal.
func redirected(op string, err error) error {
	var co *crossOrigin
	if !errors.As(err, &co) {
		return err
	}
	return &Error{Op: op, Reason: "redirected", Hint: co.Error() + "; a login page? check the Jenkins URL, and that whatever is in front of Jenkins lets an API token through"}
}

// origin is u's scheme://host:port, the port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// InputError is a bad Jenkins URL or missing credentials (exit 2).
type InputError struct {
	Msg string
	// Fields names the template fields that were refused (cloud, template,
	// label, image, instance-cap, emptyDir, …), for callers that map them
	// to their own option names.
	Fields    []string
	notPinned bool
}

func (e *InputError) Error() string { return e.Msg }

func (c *Client) preflight(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.cfg.URL, "/")+"/api/json", nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.cfg.User, c.cfg.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.scrub(redirected("connect", fmt.Errorf("connect to %s: %w", c.cfg.URL, err)))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := statusError("connect", resp); err != nil {
		return err
	}
	// An HTML page where the JSON should be (a proxy's, a login form)
	// would reach gojenkins' decoder as "invalid character '<'".
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(strings.TrimSpace(string(body)), "<") {
		return &Error{Status: resp.StatusCode, Op: "connect", Reason: "not-jenkins", Hint: fmt.Sprintf("GET /api/json answered a page (%s), not JSON: a login page, a proxy's page? check the Jenkins URL", pageText(string(body), 200))}
	}
	return nil
}

// statusError maps an HTTP status to an *Error, nil for 2xx/3xx.
func statusError(op string, resp *http.Response) error {
	switch s := resp.StatusCode; {
	case s < 400:
		if op == "connect" && resp.Header.Get("X-Jenkins") == "" {
			return &Error{Status: s, Op: op, Reason: "not-jenkins", Hint: "the server answered without an X-Jenkins header: check the Jenkins URL"}
		}
		return nil
	case s == http.StatusUnauthorized:
		return &Error{Status: s, Op: op, Reason: "unauthorized", Hint: "the user or API token is wrong (create a token under the user's Security page)"}
	case s == http.StatusForbidden:
		return forbidden(op, resp, "the user lacks the permission; registering pod templates needs Overall/Administer (the script console)")
	case s == http.StatusNotFound && op == "connect":
		return &Error{Status: s, Op: op, Reason: "not-jenkins", Hint: "no Jenkins API at this URL: check the Jenkins URL (and its path prefix)"}
	default:
		return fmt.Errorf("%s: HTTP %s", op, resp.Status)
	}
}

// crumbRefused is the *Error for a 403 whose page (body) is CrumbFilter's
// "No valid crumb was included in the request" (hudson/security/csrf/
// CrumbFilter.java, ff9430ee, L156), nil for any other answer. A
// password's crumb holds only with its session cookie, which a proxy or a
// load balancer without sticky sessions loses; the user's permissions
// are not in question.
func crumbRefused(op string, resp *http.Response, body string) *Error {
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "No valid crumb was included in the request") {
		return nil
	}
	return &Error{Status: resp.StatusCode, Op: op, Reason: "crumb",
		Hint: "Jenkins refused the CSRF crumb: a password's crumb holds only in its session, which a proxy or load balancer without sticky sessions loses; use an API token, which needs no crumb"}
}

// forbidden is the *Error for a 403: the user lacks the permission
// Jenkins names (X-Required-Permission), else hint.
func forbidden(op string, resp *http.Response, hint string) *Error {
	if p := resp.Header.Get("X-Required-Permission"); p != "" {
		hint = "the user lacks " + p
	}
	return &Error{Status: resp.StatusCode, Op: op, Reason: "forbidden", Hint: hint}
}

// script posts a fixed script to /scriptText and returns its output.
func (c *Client) script(ctx context.Context, op, text string) (out string, err error) {
	ar := gojenkins.NewAPIRequest(http.MethodPost, "/scriptText", strings.NewReader(url.Values{"script": {text}}.Encode()))
	ar.SetHeader("Content-Type", "application/x-www-form-urlencoded")
	if err := c.setCrumb(ctx, ar); err != nil {
		return "", c.scrub(fmt.Errorf("%s: CSRF crumb: %w", op, err))
	}
	resp, err := c.req.Do(ctx, ar, &out)
	if err != nil {
		return "", c.scrub(redirected(op, fmt.Errorf("%s: POST /scriptText: %w", op, err)))
	}
	if resp.Request != nil && !strings.HasSuffix(resp.Request.URL.Path, "/scriptText") {
		// Redirected within the origin (sameOrigin refuses the rest): a
		// single sign-on proxy's login page, say. The script did not run.
		where := httpget.RedactURL(resp.Request.URL.String())
		if len(where) > 200 {
			where = where[:200] + "…"
		}
		return "", &Error{Status: resp.StatusCode, Op: op, Reason: "redirected",
			Hint: fmt.Sprintf("POST /scriptText was redirected to %s (a login page?) and the script did not run: check the Jenkins URL, and that whatever is in front of Jenkins lets an API token through", where)}
	}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		return "", &Error{Status: resp.StatusCode, Op: op, Reason: "script-console", Hint: "the script console (/scriptText) is not available on this controller; register through configuration as code instead"}
	}
	if e := crumbRefused(op, resp, out); e != nil {
		return "", e
	}
	if err := statusError(op, resp); err != nil {
		var je *Error
		if !errors.As(err, &je) && strings.TrimSpace(out) != "" {
			// An unexpected answer (a 500 stack trace, a proxy's page):
			// quote it, scrubbed.
			err = fmt.Errorf("%w; Jenkins said:\n%s", err, pageText(out, 2000))
		}
		return "", c.scrub(err)
	}
	return out, nil
}

// setCrumb wraps gojenkins' SetCrumb, which dereferences a nil response when
// the crumb request fails at the transport level (a timeout, a refused
// connection): that panic becomes an error here.
func (c *Client) setCrumb(ctx context.Context, ar *gojenkins.APIRequest) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
				return
			}
			err = fmt.Errorf("crumb request to %s failed", c.cfg.URL)
		}
	}()
	return c.req.SetCrumb(ctx, ar)
}

// result is the machine-readable line every script prints.
type result struct {
	Status   string         `json:"status"`
	Reason   string         `json:"reason"`
	ID       string         `json:"id"`
	Clouds   []string       `json:"clouds"`
	Sources  []string       `json:"sources"`
	Kind     string         `json:"kind"`
	Before   *TemplateState `json:"before"`
	After    *TemplateState `json:"after"`
	Position int            `json:"position"`
	Warnings []string       `json:"warnings"`
}

const resultPrefix = "AGENTFORGE-RESULT "

// parseResult finds the result line in a script's output. Jenkins answers 200
// even when the script throws, so a missing line is a failure; a class that
// does not resolve means the Kubernetes plugin is not installed.
func parseResult(op, out string) (*result, error) {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), resultPrefix); ok {
			var r result
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return nil, fmt.Errorf("%s: unreadable result line: %w", op, err)
			}
			return &r, nil
		}
	}
	if strings.Contains(out, "unable to resolve class org.csanchez.jenkins.plugins.kubernetes") {
		return nil, &Error{Op: op, Reason: "plugin-missing", Hint: "the Kubernetes plugin (kubernetes) is not installed on this controller"}
	}
	said := httpget.Truncate(out, 2000)
	if strings.HasPrefix(strings.TrimSpace(out), "<") {
		// A page (a proxy's, a maintenance notice), not the console's
		// output: its text, not its markup.
		said = "a page: " + pageText(out, 2000)
	}
	return nil, fmt.Errorf("%s: the script gave no result; Jenkins said:\n%s", op, said)
}

// scrub removes every credential sent from an error message. The result
// keeps the error's kind (an *Error or *InputError, scrubbed too, or a
// context error) for errors.As and errors.Is, not the original chain.
func (c *Client) scrub(err error) error {
	if err == nil || c == nil || c.secrets == nil {
		return err
	}
	msg := c.secrets.String(err.Error())
	if msg == err.Error() {
		return err
	}
	r := &redactedError{msg: msg}
	var je *Error
	var ie *InputError
	switch {
	case errors.As(err, &je):
		cp := *je
		cp.Op, cp.Reason, cp.Hint = c.secrets.String(cp.Op), c.secrets.String(cp.Reason), c.secrets.String(cp.Hint)
		r.kind = &cp
	case errors.As(err, &ie):
		r.kind = &InputError{Msg: c.secrets.String(ie.Msg), Fields: ie.Fields, notPinned: ie.notPinned}
	case errors.Is(err, context.DeadlineExceeded):
		r.kind = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		r.kind = context.Canceled
	}
	return r
}

// redactedError is an error whose message had credentials removed.
type redactedError struct {
	msg  string
	kind error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.kind }

// debugf and warn log through the configured logger, scrubbed.
func (c *Client) debugf(format string, args ...any) {
	c.log.Debug(c.secrets.String(fmt.Sprintf(format, args...)))
}

func (c *Client) warn(msg string) { c.log.Warn(c.secrets.String(msg)) }

// pageText is the readable text of an HTML or plain answer, cut to n bytes.
func pageText(s string, n int) string {
	s = htmlHiddenRE.ReplaceAllString(s, " ")
	s = htmlTagRE.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	return httpget.Truncate(strings.Join(lines, "\n"), n)
}

var htmlTagRE = regexp.MustCompile(`<[^>]*>`)

// htmlHiddenRE matches what a page holds that is not text shown: comments
// and the content of its style sheets and scripts.
var htmlHiddenRE = regexp.MustCompile(`(?is)<!--.*?-->|<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>`)
