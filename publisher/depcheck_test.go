package publisher

import (
	"os/exec"
	"strings"
	"testing"
)

// The import graph stays one-way (see builder/image's doc): a Go program
// that only publishes must not pull in buildah, the podman bindings or the
// builder package (builder/image and builder/sbom, which read images
// through c/image only, are shared), and builder/image and builder/sbom
// must import neither builder nor publisher.
func TestDependencies(t *testing.T) {
	const tags = "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper"
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"github.com/agentforge/agentforge/publisher", []string{
			"github.com/containers/buildah", "github.com/containers/podman/v5",
			"github.com/agentforge/agentforge/builder", "github.com/agentforge/agentforge/jenkins",
		}},
		{"github.com/agentforge/agentforge/builder/image", []string{
			"github.com/containers/buildah", "github.com/containers/podman/v5",
			"github.com/agentforge/agentforge/builder", "github.com/agentforge/agentforge/publisher",
			"github.com/agentforge/agentforge/images",
		}},
		{"github.com/agentforge/agentforge/builder/sbom", []string{
			"github.com/containers/buildah", "github.com/containers/podman/v5",
			"github.com/agentforge/agentforge/builder", "github.com/agentforge/agentforge/publisher",
			"github.com/agentforge/agentforge/images",
		}},
		{"github.com/agentforge/agentforge/images/errs", []string{"github.com/"}},
		{"github.com/agentforge/agentforge/jenkins", []string{
			"github.com/agentforge/agentforge/builder", "github.com/agentforge/agentforge/publisher", "go.podman.io/",
		}},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-tags", tags, "-deps", tc.pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tc.pkg, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 {
				t.Fatalf("go list printed %d packages", len(deps))
			}
			for _, d := range deps {
				for _, f := range tc.forbidden {
					// A forbidden path forbids its subpackages too, except
					// that images/errs is everyone's and builder/image is
					// the point of this test.
					if (d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/")) && d != "github.com/agentforge/agentforge/images/errs" && !(f == "github.com/agentforge/agentforge/builder" && shared(d)) {
						t.Errorf("%s imports %s", tc.pkg, d)
					}
				}
			}
		})
	}
}

// shared are the builder packages every side may use: builder/image and
// builder/sbom (not their tests' helpers).
func shared(pkg string) bool {
	for _, p := range []string{"github.com/agentforge/agentforge/builder/image", "github.com/agentforge/agentforge/builder/sbom"} {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}
