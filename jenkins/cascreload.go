package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/bndr/gojenkins"
)

// ReloadCasc asks the controller's configuration-as-code plugin to read
// its sources again: POST /configuration-as-code/reload, which needs
// Overall/Manage (configuration-as-code-plugin ConfigurationAsCode.doReload,
// L169-191 at 58646eb6: @RequirePOST; 403 without MANAGE; a redirect to
// its own page on success; the "Error loading configuration" page, status
// 200, when the YAML does not apply). A redirect elsewhere (a login page)
// is a refusal. An API token needs no CSRF crumb; a password gets
// one.
func (c *Client) ReloadCasc(ctx context.Context) (err error) {
	defer func() { err = c.scrub(err) }()
	const op = "reload configuration as code"
	ar := gojenkins.NewAPIRequest(http.MethodPost, "/configuration-as-code/reload", nil)
	if err := c.setCrumb(ctx, ar); err != nil {
		return fmt.Errorf("%s: CSRF crumb: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.cfg.URL, "/")+"/configuration-as-code/reload", nil)
	if err != nil {
		return err
	}
	for k, v := range ar.Headers {
		req.Header[k] = v
	}
	req.SetBasicAuth(c.cfg.User, c.cfg.Token)
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch s := resp.StatusCode; {
	case s >= 300 && s < 400:
		// The plugin sends the browser back to its page
		// (response.sendRedirect(""): <root>/configuration-as-code/); a
		// single sign-on proxy in front of a user it does not know sends
		// it to a login page, and nothing was reloaded.
		loc, err := resp.Location()
		if err != nil || !strings.HasSuffix(strings.TrimSuffix(loc.Path, "/"), "/configuration-as-code") {
			where := resp.Header.Get("Location")
			if len(where) > 200 {
				where = where[:200] + "…"
			}
			return &Error{Status: s, Op: op, Reason: "casc-reload", Hint: fmt.Sprintf("the reload was sent to %q, not back to the configuration-as-code page (a login page?): Jenkins did not say it reloaded", where)}
		}
		c.debugf("configuration as code reloaded")
		return nil
	case s == http.StatusNotFound:
		return &Error{Status: s, Op: op, Reason: "casc-missing", Hint: "the configuration-as-code plugin is not installed on this controller"}
	case s == http.StatusForbidden:
		if e := crumbRefused(op, resp, string(body)); e != nil {
			return e
		}
		return forbidden(op, resp, "reloading configuration as code needs Overall/Manage")
	case s == http.StatusOK:
		return &Error{Status: s, Op: op, Reason: "casc-reload", Hint: "Jenkins did not apply the configuration: " + pageText(string(body), 2000)}
	default:
		if err := statusError(op, resp); err != nil {
			return err
		}
		return fmt.Errorf("%s: HTTP %s", op, resp.Status)
	}
}

// plugins returns the versions of the active plugins by short name.
func (c *Client) plugins(ctx context.Context) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.cfg.URL, "/")+"/pluginManager/api/json?depth=1&tree=plugins%5BshortName,active,version%5D", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.cfg.User, c.cfg.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.scrub(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("plugin list: HTTP %s", strconv.Itoa(resp.StatusCode))
	}
	var list struct {
		Plugins []struct {
			ShortName string `json:"shortName"`
			Active    bool   `json:"active"`
			Version   string `json:"version"`
		} `json:"plugins"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("plugin list: %w", err)
	}
	out := map[string]string{}
	for _, p := range list.Plugins {
		if p.Active {
			out[p.ShortName] = p.Version
		}
	}
	return out, nil
}
