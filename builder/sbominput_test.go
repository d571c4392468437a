package builder

import (
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/source"
)

// The SBOM lists every source that was checked, local or downloaded (the
// builder image's agentforge binary is a local file checked against make
// dist's SHA256SUMS), and leaves out local files trusted unchecked as part
// of the build context (testdata/busybox's unpacker).
func TestSBOMInput_Sources(t *testing.T) {
	res := &Result{Sources: []source.Fetched{
		{Name: "unpacker", URL: "file:///bin/busybox", Checks: []string{"local file (not downloaded)"}},
		{Name: "agentforge-amd64", URL: "file:///src/dist/agentforge-linux-amd64", Checks: []string{"sha256 (published checksum)"}},
		{Name: "pinned", URL: "file:///src/rootfs.tar", Checks: []string{"sha256"}},
		{Name: "python", URL: "https://www.python.org/ftp/python/3.11.9/Python-3.11.9.tar.xz", Checks: []string{"sha256", "openpgp A035C8C19219BA821ECEA86B64E628F8D684696D"}},
	}}
	var got []string
	for _, s := range sbomInput(res).Sources {
		got = append(got, s.Name)
	}
	if want := "agentforge-amd64 pinned python"; strings.Join(got, " ") != want {
		t.Errorf("SBOM sources %q, want %q", strings.Join(got, " "), want)
	}
}
