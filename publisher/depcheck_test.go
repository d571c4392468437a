package publisher

import (
	"os/exec"
	"strings"
	"testing"
)

// The import graph stays one-way (see builder/oci's doc): a Go program
// that only publishes must not pull in buildah, the podman bindings or the
// builder package (builder/oci, builder/oci/remote and builder/sbom, which
// read images through c/image only, are shared), and they must import
// neither builder nor publisher.
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
		{"github.com/agentforge/agentforge/builder/oci", []string{
			"github.com/containers/buildah", "github.com/containers/podman/v5",
			"github.com/agentforge/agentforge/builder", "github.com/agentforge/agentforge/publisher",
			"github.com/agentforge/agentforge/images",
		}},
		{"github.com/agentforge/agentforge/builder/sbom", []string{
			"github.com/containers/buildah", "github.com/containers/podman/v5",
			"github.com/agentforge/agentforge/builder", "github.com/agentforge/agentforge/publisher",
		}},
		{"github.com/agentforge/agentforge/builder/source", []string{
			"github.com/containers/buildah", "github.com/containers/podman/v5",
			"github.com/agentforge/agentforge/builder", "github.com/agentforge/agentforge/publisher",
		}},
		{"github.com/agentforge/agentforge/images/errs", []string{"github.com/"}},
		{"github.com/agentforge/agentforge/images/redact", []string{"github.com/"}},
		{"github.com/agentforge/agentforge/images/httpget", []string{"github.com/"}},
		{"github.com/agentforge/agentforge/images/progress", []string{"github.com/"}},
		{"github.com/agentforge/agentforge/images/deb822", []string{"github.com/"}},
		{"github.com/agentforge/agentforge/images/fileedit", []string{"github.com/"}},
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
					// that the standard-library-only helpers under images
					// are everyone's and the shared builder packages are
					// the point of this test.
					if (d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/")) && !everyones(d) && !(f == "github.com/agentforge/agentforge/builder" && shared(d)) {
						t.Errorf("%s imports %s", tc.pkg, d)
					}
				}
			}
		})
	}
}

// shared are the builder packages every side may use: builder/oci,
// builder/sbom and builder/source (not their tests' helpers).
func shared(pkg string) bool {
	for _, p := range []string{"github.com/agentforge/agentforge/builder/oci", "github.com/agentforge/agentforge/builder/sbom", "github.com/agentforge/agentforge/builder/source"} {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// everyones are the packages under images that import only the standard
// library, so that every package may use them.
func everyones(pkg string) bool {
	switch strings.TrimPrefix(pkg, "github.com/agentforge/agentforge/") {
	case "images/errs", "images/redact", "images/httpget", "images/progress", "images/deb822", "images/fileedit":
		return true
	}
	return false
}

// The shipped binary links no test code at all: none of our test helpers
// (jenkinstest, registrytest, …), not net/http/httptest, not testing (a
// dependency used to: estargz before v0.19 imported testing outside its
// tests). agentforge demo runs from the binary alone.
func TestShippedBinaryLinksNoTestCode(t *testing.T) {
	const tags = "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper"
	out, err := exec.Command("go", "list", "-deps", "-tags", tags, "../cmd/agentforge").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || pkg == "net/http/httptest" || strings.HasPrefix(pkg, "github.com/agentforge/agentforge/") && strings.HasSuffix(pkg, "test") {
			t.Errorf("cmd/agentforge links %s", pkg)
		}
	}
}
