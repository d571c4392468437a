package jenkins

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/bndr/gojenkins"
)

// Node is a permanent inbound (JNLP) agent, for users without Kubernetes.
type Node struct {
	Name        string `json:"name"`
	Label       string `json:"label"`
	RemoteFS    string `json:"remoteFS"`
	Executors   int    `json:"executors"`
	Description string `json:"description"`
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// RegisterNode creates the node through gojenkins' CreateNode, or updates
// its label, remote FS, executors and description through its config.xml.
// Status: created, updated or unchanged.
func (c *Client) RegisterNode(ctx context.Context, n Node, opts Options) (_ *Outcome, err error) {
	defer func() { err = c.scrub(err) }()
	if !nodeNameRE.MatchString(n.Name) {
		return nil, &InputError{Msg: fmt.Sprintf("node %q: want letters, digits, . _ - (up to 100)", n.Name)}
	}
	if !labelRE.MatchString(n.Label) {
		return nil, &InputError{Msg: fmt.Sprintf("label %q: want labels separated by single spaces", n.Label)}
	}
	if n.RemoteFS == "" {
		n.RemoteFS = "/home/jenkins/agent"
	}
	if n.Executors <= 0 {
		n.Executors = 1
	}
	op := fmt.Sprintf("register node %q", n.Name)
	cfg, status, err := c.get(ctx, "/computer/"+url.PathEscape(n.Name)+"/config.xml")
	if err != nil {
		return nil, err
	}
	out := &Outcome{JenkinsVersion: c.Version}
	switch {
	case status == http.StatusNotFound:
		if opts.DryRun {
			out.Status = "would-create"
			return out, nil
		}
		// CreateNode follows Jenkins' redirect to the HTML /computer/ page
		// and reports a JSON error although the node was created: believe
		// the read-back, not the error.
		_, cerr := c.j.CreateNode(ctx, n.Name, n.Executors, n.Description, n.RemoteFS, n.Label)
		if _, st, err := c.get(ctx, "/computer/"+url.PathEscape(n.Name)+"/api/json"); err != nil || st != http.StatusOK {
			if cerr == nil {
				cerr = fmt.Errorf("node not found after creation (HTTP %d)", st)
			}
			return nil, c.scrub(fmt.Errorf("%s: %w", op, cerr))
		}
		out.Status = "created"
	case status == http.StatusOK:
		updated, changed, err := updateNodeXML(cfg, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if !changed {
			out.Status = "unchanged"
			return out, nil
		}
		if opts.DryRun {
			out.Status = "would-update"
			return out, nil
		}
		if err := c.postXML(ctx, op, "/computer/"+url.PathEscape(n.Name)+"/config.xml", updated); err != nil {
			return nil, err
		}
		out.Status = "updated"
	default: // 401 and 403 were already turned into *Error by get
		return nil, fmt.Errorf("%s: HTTP %d", op, status)
	}
	// Read back.
	cfg, status, err = c.get(ctx, "/computer/"+url.PathEscape(n.Name)+"/config.xml")
	if err != nil || status != http.StatusOK {
		return out, fmt.Errorf("%s: read-back: HTTP %d %v", op, status, err)
	}
	if _, changed, err := updateNodeXML(cfg, n); err != nil || changed {
		return out, fmt.Errorf("%s: read-back differs from the request", op)
	}
	return out, nil
}

// get fetches a path with basic auth and returns the body and status.
func (c *Client) get(ctx context.Context, path string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.cfg.URL, "/")+path, nil)
	if err != nil {
		return "", 0, err
	}
	req.SetBasicAuth(c.cfg.User, c.cfg.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, c.scrub(fmt.Errorf("GET %s: %w", path, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return "", 0, c.scrub(fmt.Errorf("GET %s: %w", path, err))
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", resp.StatusCode, statusError("GET "+path, resp)
	}
	return string(body), resp.StatusCode, nil
}

func (c *Client) postXML(ctx context.Context, op, path, body string) error {
	ar := gojenkins.NewAPIRequest(http.MethodPost, path, strings.NewReader(body))
	ar.SetHeader("Content-Type", "application/xml")
	if err := c.setCrumb(ctx, ar); err != nil {
		return c.scrub(fmt.Errorf("%s: CSRF crumb: %w", op, err))
	}
	var out string
	resp, err := c.req.Do(ctx, ar, &out)
	if err != nil {
		return c.scrub(fmt.Errorf("%s: POST %s: %w", op, path, err))
	}
	if resp.StatusCode >= 400 {
		if e := statusError(op, resp); e != nil {
			return e
		}
	}
	return nil
}

// updateNodeXML sets the managed elements of a node's config.xml and
// reports whether anything changed. Values are XML-escaped.
func updateNodeXML(cfg string, n Node) (string, bool, error) {
	changed := false
	for _, kv := range [][2]string{{"label", n.Label}, {"remoteFS", n.RemoteFS}, {"numExecutors", strconv.Itoa(n.Executors)}, {"description", n.Description}} {
		re := regexp.MustCompile(`(?s)<` + kv[0] + `>(.*?)</` + kv[0] + `>|<` + kv[0] + `/>`)
		var esc strings.Builder
		xml.EscapeText(&esc, []byte(kv[1]))
		m := re.FindStringSubmatch(cfg)
		if m == nil {
			if kv[1] == "" {
				continue
			}
			return "", false, fmt.Errorf("config.xml has no <%s> element", kv[0])
		}
		if unescapeXML(m[1]) == kv[1] {
			continue
		}
		changed = true
		cfg = strings.Replace(cfg, m[0], "<"+kv[0]+">"+esc.String()+"</"+kv[0]+">", 1)
	}
	return cfg, changed, nil
}

func unescapeXML(s string) string {
	var v struct {
		Text string `xml:",chardata"`
	}
	if err := xml.Unmarshal([]byte("<x>"+s+"</x>"), &v); err != nil {
		return s
	}
	return v.Text
}

// RemoveNode deletes a permanent agent through gojenkins' DeleteNode. Jenkins
// answers the delete with a redirect to an HTML page, which gojenkins reports
// as an error: the node being gone on read-back is what counts.
// Status: removed, or unchanged when there was no such node.
func (c *Client) RemoveNode(ctx context.Context, name string, opts Options) (_ *Outcome, err error) {
	defer func() { err = c.scrub(err) }()
	if !nodeNameRE.MatchString(name) {
		return nil, &InputError{Msg: fmt.Sprintf("node %q: want letters, digits, . _ - (up to 100)", name)}
	}
	path := "/computer/" + url.PathEscape(name) + "/api/json"
	_, status, err := c.get(ctx, path)
	if err != nil {
		return nil, err
	}
	out := &Outcome{JenkinsVersion: c.Version, Status: "unchanged"}
	if status == http.StatusNotFound {
		return out, nil
	}
	if opts.DryRun {
		out.Status = "would-remove"
		return out, nil
	}
	_, derr := c.deleteNode(ctx, name)
	if _, status, err := c.get(ctx, path); err != nil || status != http.StatusNotFound {
		if derr == nil {
			derr = fmt.Errorf("node still there after deletion (HTTP %d)", status)
		}
		return nil, c.scrub(fmt.Errorf("remove node %q: %w", name, derr))
	}
	out.Status = "removed"
	return out, nil
}

// deleteNode calls gojenkins' DeleteNode, whose crumb request panics on a
// transport error like every Post.
func (c *Client) deleteNode(ctx context.Context, name string) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("delete node %q: request to %s failed", name, c.cfg.URL)
		}
	}()
	return c.j.DeleteNode(ctx, name)
}
