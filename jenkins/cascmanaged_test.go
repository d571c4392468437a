package jenkins

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// configuration-as-code reads its sources as YAML, of which flow style and
// JSON are forms: a source declaring jenkins.clouds in either manages the
// clouds as much as a block-style one, and script registration is refused
// there (the next reload would drop the template). A source that only
// mentions clouds in prose does not.
func TestRegister_RefusedWhereCascManagesCloudsInAnyForm(t *testing.T) {
	for _, tc := range []struct {
		name, casc string
		managed    bool
	}{
		{name: "block", casc: "jenkins:\n  clouds:\n    - kubernetes:\n        name: kubernetes\n", managed: true},
		{name: "flow", casc: "jenkins: {clouds: [{kubernetes: {name: kubernetes}}]}\n", managed: true},
		{name: "json", casc: `{"jenkins": {"clouds": [{"kubernetes": {"name": "kubernetes"}}]}}` + "\n", managed: true},
		{name: "quoted key", casc: "jenkins:\n  'clouds' :\n    - kubernetes:\n        name: kubernetes\n", managed: true},
		{name: "prose", casc: "jenkins:\n  systemMessage: \"the clouds are set up by hand\"\n"},
		{name: "another key", casc: "jenkins:\n  myclouds: 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "jenkins.yaml")
			if err := os.WriteFile(file, []byte(tc.casc), 0o644); err != nil {
				t.Fatal(err)
			}
			srv := cascServer(t, file, nil)
			_, err := connect(t, srv, "admin", token).Register(context.Background(), pythonTemplate(digestA), Options{})
			var je *Error
			if refused := errors.As(err, &je) && je.Reason == "casc-managed"; refused != tc.managed {
				t.Fatalf("Register: %v; want refused as casc-managed: %t", err, tc.managed)
			}
			if !tc.managed && err != nil {
				t.Fatalf("Register: %v", err)
			}
		})
	}
}
