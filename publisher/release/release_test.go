package release

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher"
	"go.podman.io/storage"
)

// Bad input is found before anything is built: Run returns errs.ErrInput
// and no report. (The whole chain runs end to end in cmd/agentforge's
// release and demo tests.)
func TestRun_BadConfigChangesNothing(t *testing.T) {
	def := &images.Definition{Name: "x"}
	var store storage.Store = fakeStore{} // never used: Run stops before building
	dest, err := publisher.ParseDestination("registry.example/a/x", []string{"1"})
	if err != nil {
		t.Fatal(err)
	}
	okTemplate := jenkins.Template{Cloud: "kubernetes", Name: "x", Label: "x", InstanceCap: -1}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no definition", Config{}, "no definition"},
		{"no store", Config{Definition: def}, "no storage"},
		{"no destination", Config{Definition: def, Build: withStore(store)}, "no destination"},
		{"jenkins destination out of range", Config{Definition: def, Build: withStore(store), Destinations: []publisher.Destination{dest},
			Jenkins: &Jenkins{Template: okTemplate, Destination: 1}}, "jenkins destination 1"},
		{"jenkins CA file missing", Config{Definition: def, Build: withStore(store), Destinations: []publisher.Destination{dest},
			Jenkins: &Jenkins{Template: okTemplate, Client: jenkins.Config{CAFile: "/nonexistent/jenkins-ca.pem"}}}, "jenkins CA file"},
		{"bad template", Config{Definition: def, Build: withStore(store), Destinations: []publisher.Destination{dest},
			Jenkins: &Jenkins{Template: jenkins.Template{Cloud: "kubernetes", Name: "", Label: "x"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), tc.cfg)
			if !errors.Is(err, errs.ErrInput) || rep != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, report %v; want bad input containing %q", err, rep, tc.want)
			}
		})
	}
}

type fakeStore struct{ storage.Store }

func withStore(s storage.Store) builder.BuildOptions { return builder.BuildOptions{Store: s} }
