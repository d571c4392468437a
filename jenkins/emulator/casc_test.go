package emulator

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reload posts /configuration-as-code/reload with the admin's API token.
func reload(t *testing.T, s *Server, method string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+"/configuration-as-code/reload", nil)
	req.SetBasicAuth(admin.Name, admin.Token)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// The reload models the configuration-as-code plugin: the clouds list is
// replaced (a cloud missing from the YAML is gone), each template built
// afresh (one without an id gets a new random one every time: the
// PodTemplate constructor), the files of a folder joined (lists
// concatenated), ${VAR} resolved and ^${ kept literal; a YAML without
// jenkins.clouds leaves the clouds alone; GET is refused.
func TestCascReload_ReplacesTheClouds(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "01-cloud.yaml"), []byte(`jenkins:
  clouds:
    - kubernetes:
        name: "k8s"
        namespace: "${NS}"
        templates:
          - name: "fixed"
            id: "fixed-id"
            label: "^${LITERAL}"
          - name: "random"
`), 0o644)
	os.WriteFile(filepath.Join(dir, "02-more.yml"), []byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: \"second\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden.yaml"), []byte("jenkins:\n  clouds:\n    - kubernetes:\n        name: \"hidden\"\n"), 0o644)
	s := newServer(t, Options{Users: []User{admin}, CascFile: dir, CascEnv: map[string]string{"NS": "ci"},
		State: State{Clouds: []Cloud{{Kind: "docker", Name: "docker"}}}})
	if resp := reload(t, s, http.MethodGet); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	ids := map[string]bool{}
	for i := 0; i < 2; i++ {
		if resp := reload(t, s, http.MethodPost); resp.StatusCode != http.StatusFound {
			t.Fatalf("reload: %d", resp.StatusCode)
		}
		st := s.State()
		if len(st.Clouds) != 2 || st.Clouds[0].Name != "k8s" || st.Clouds[1].Name != "second" || st.Clouds[0].Settings["namespace"] != "ci" {
			t.Fatalf("clouds: %+v", st.Clouds)
		}
		fixed, random := st.Clouds[0].Templates[0], st.Clouds[0].Templates[1]
		if fixed["id"] != "fixed-id" || fixed["label"] != "${LITERAL}" {
			t.Errorf("fixed: %v", fixed)
		}
		ids[random["id"].(string)] = true
	}
	if len(ids) != 2 {
		t.Errorf("a template without an id kept it across reloads: %v", ids)
	}

	none := filepath.Join(t.TempDir(), "system.yaml")
	os.WriteFile(none, []byte("jenkins:\n  systemMessage: hi\n"), 0o644)
	s = newServer(t, Options{Users: []User{admin}, CascFile: none, State: State{Clouds: []Cloud{{Kind: "docker", Name: "docker"}}}})
	if resp := reload(t, s, http.MethodPost); resp.StatusCode != http.StatusFound || len(s.State().Clouds) != 1 {
		t.Errorf("no clouds in the YAML: %d %+v", resp.StatusCode, s.State().Clouds)
	}
}

// What the plugin's configurators refuse fails the reload with Jenkins'
// error page (status 200), and changes nothing.
func TestCascReload_RefusesUnknownAttributes(t *testing.T) {
	for _, y := range []string{
		"jenkins:\n  clouds:\n    - kubernetes:\n        name: k\n        templates:\n          - name: t\n            nodeSelectors: a=b\n",
		"jenkins:\n  clouds:\n    - nomad:\n        name: n\n",
		"jenkins:\n  clouds:\n    - kubernetes:\n        name: k\n        templates:\n          - name: t\n            yamlMergeStrategy: replace\n",
	} {
		f := filepath.Join(t.TempDir(), "jenkins.yaml")
		os.WriteFile(f, []byte(y), 0o644)
		s := newServer(t, Options{Users: []User{admin}, CascFile: f, State: State{Clouds: []Cloud{{Kind: "docker", Name: "docker"}}}})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/configuration-as-code/reload", nil)
		req.SetBasicAuth(admin.Name, admin.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body[:n]), "Error loading configuration") {
			t.Errorf("%q: %d %s", y, resp.StatusCode, body[:n])
		}
		if st := s.State(); len(st.Clouds) != 1 || st.Clouds[0].Kind != "docker" || st.Saves != 0 {
			t.Errorf("%q: a failed reload changed Jenkins: %+v", y, st)
		}
	}
}
