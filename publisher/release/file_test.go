package release

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images/errs"
)

// Everything a release file can get wrong is found when it is loaded,
// before anything is built, as bad input naming FILE:LINE (a typo used to
// surface only at the publish stage, and an empty smoke command made the
// chroot helper panic after the build).
func TestParseFile_BadInputNamesTheLine(t *testing.T) {
	const ok = "destinations:\n  - registry.example/agents/x\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", ok + "verfy: full\n", "release.yaml:3: "},
		{"verify typo", ok + "verify: ful\n", `release.yaml:3: verify "ful"`},
		{"empty smoke command", ok + "smoke:\n  - [python3, --version]\n  - []\n", "release.yaml:5: smoke[1]: an empty command"},
		{"smoke command with an empty program", ok + "smoke:\n  - ['', x]\n", "release.yaml:4: smoke[0]"},
		{"no destinations", "verify: full\n", "release.yaml:1: destinations"},
		{"bad destination", "destinations:\n  - registry.example/agents/x\n  - 'Not A/Repo'\n", "release.yaml:3: destinations[1]"},
		{"bare destination", "destinations:\n  - agents/x\n", "release.yaml:2: destinations[0]"},
		{"bad platform", ok + "platforms: [linux/amd64, linux]\n", "release.yaml:3: "},
		{"bad source mirror", ok + "sourceMirrors: [https://a.example/]\n", "release.yaml:3: "},
		{"jenkins destination out of range", ok + "jenkins:\n  destination: 1\n", "release.yaml:4: jenkins.destination 1"},
		{"jenkins template with spaces", ok + "jenkins:\n  template: ' agent '\n", "release.yaml:4: jenkins:"},
		{"jenkins instance cap over a Java int", ok + "jenkins:\n  instanceCap: 3000000000\n", "release.yaml:4: jenkins:"},
		{"podman storage without podman", ok + "jenkins:\n  podmanStorage: /x\n", "release.yaml:4: jenkins.podmanStorage"},
		{"not YAML", "destinations: [\n", "release.yaml:"},
		{"empty", "", "release.yaml: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("release.yaml", []byte(tc.yaml))
			if !errors.Is(err, errs.ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want bad input containing %q", err, tc.want)
			}
		})
	}
	f, err := ParseFile("release.yaml", []byte(ok+"smoke: [[python3, --version]]\nsourceMirrors: [https://a.example/=https://b.example/]\n"))
	if err != nil || f.Definition != DefaultDefinition || len(f.SourceMirrors) != 1 || f.SourceMirrors[0].To != "https://b.example/" {
		t.Fatalf("a good file: %+v, %v", f, err)
	}
}
