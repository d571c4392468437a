package sbom

import (
	"context"
	"os"
	"testing"

	"go.podman.io/image/v5/oci/layout"
)

// TestGenerate_RealLayout reads a real image from an OCI layout named by
// $AGENTFORGE_SBOM_LAYOUT (DIR:TAG), e.g. a python-agent build exported
// with skopeo. It is opt-in: such an image is hundreds of MB.
func TestGenerate_RealLayout(t *testing.T) {
	spec := os.Getenv("AGENTFORGE_SBOM_LAYOUT")
	if spec == "" {
		t.Skip("set AGENTFORGE_SBOM_LAYOUT=DIR:TAG to read a real image")
	}
	ref, err := layout.ParseReference(spec)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Generate(context.Background(), ref, Input{})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, p := range doc.Packages {
		counts[p.PrimaryPackagePurpose]++
	}
	t.Logf("%s: %d packages %v", doc.Name, len(doc.Packages), counts)
	if out := os.Getenv("AGENTFORGE_SBOM_OUT"); out != "" {
		if err := Write(out, doc); err != nil {
			t.Fatal(err)
		}
	}
	data, err := doc.JSON()
	if err != nil {
		t.Fatal(err)
	}
	CrossCheck(t, data, doc)
	if len(doc.Packages) < 2 {
		t.Errorf("want dpkg packages in %s, got %d packages", spec, len(doc.Packages))
	}
}
