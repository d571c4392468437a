package update

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
)

// A kind that could not be checked makes Report.Err fail, with the class
// of its cause (the definition's fault: input; python.org or the Maven
// repository answering 503: runtime), so that a nightly whose checks
// could not look does not read as "nothing newer". The OS packages
// without the released image are skipped, not a problem, unless asked
// for by name.
func TestReport_Err(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	remoting := []images.Source{{Name: "remoting", URL: "https://repo.jenkins-ci.org/public/org/jenkins-ci/main/remoting/3355.v388858a_47b_33/remoting-3355.v388858a_47b_33.jar"}}
	mirrors := []remote.Mirror{{From: "https://repo.jenkins-ci.org/", To: srv.URL + "/"}}
	for _, tc := range []struct {
		name     string
		python   string
		kinds    []string
		problems []string // kinds
		skipped  []string
		input    bool
	}{
		{name: "python.org and the Maven repository are down", python: "3.11.9", problems: []string{KindCPython, KindRemoting}, skipped: []string{KindOS, KindRelease}},
		{name: "a python.version it cannot read", python: "3.11", kinds: []string{KindCPython}, problems: []string{KindCPython}, input: true},
		{name: "os asked for without an image", python: "3.11.9", kinds: []string{KindOS}, problems: []string{KindOS}, input: true},
		{name: "nothing asked for could fail", python: "3.11.9", kinds: []string{KindBase}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Sources: remoting,
				Vars: map[string]string{"python.version": tc.python, "remoting.version": "3355.v388858a_47b_33"}}
			rep := Check(context.Background(), def, Options{Kinds: tc.kinds, PythonOrg: srv.URL, Mirrors: mirrors})
			var problems, skipped []string
			for _, p := range rep.Problems {
				problems = append(problems, p.Kind)
			}
			for _, s := range rep.Skipped {
				skipped = append(skipped, s.Kind)
			}
			if strings.Join(problems, ",") != strings.Join(tc.problems, ",") || strings.Join(skipped, ",") != strings.Join(tc.skipped, ",") {
				t.Fatalf("problems %v, skipped %v; want %v, %v (%+v)", problems, skipped, tc.problems, tc.skipped, rep)
			}
			err := rep.Err()
			if (err != nil) != (len(tc.problems) > 0) {
				t.Fatalf("Err: %v", err)
			}
			if err == nil {
				return
			}
			if errors.Is(err, errs.ErrInput) != tc.input {
				t.Errorf("Err: %v; input %t, want %t", err, errors.Is(err, errs.ErrInput), tc.input)
			}
			for _, k := range tc.problems {
				if !strings.Contains(err.Error(), k+" not checked: ") {
					t.Errorf("Err: %v; does not name %s", err, k)
				}
			}
		})
	}
}
