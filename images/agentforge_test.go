package images_test

import (
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images"
)

// images/agentforge, agentforge's own builder image, loads; each platform
// takes make dist's binary for that platform, checked against the
// SHA256SUMS beside it, from a release's download folder by default or
// from --set dist=….
func TestAgentforgeDefinition(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]string
		want string // URL prefix
	}{
		{"release folder", map[string]string{"version": "1.2.3"}, "https://github.com/agentforge/agentforge/releases/download/v1.2.3/"},
		{"local make dist", map[string]string{"version": "1.2.3", "dist": "file:///src/dist"}, "file:///src/dist/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def, err := images.Find("agentforge", tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if def.Name != "agentforge" || def.Labels["org.opencontainers.image.title"] != "agentforge" || strings.Join(def.Platforms, ",") != "linux/amd64,linux/arm64" {
				t.Errorf("%s %v %v", def.Name, def.Labels, def.Platforms)
			}
			for _, p := range def.Platforms {
				var got []images.Source
				for _, s := range def.Sources {
					if s.ForPlatform(p) {
						got = append(got, s)
					}
				}
				arch := strings.TrimPrefix(p, "linux/")
				if len(got) != 1 {
					t.Fatalf("%s: %d sources, want make dist's binary only", p, len(got))
				}
				s := got[0]
				if s.URL != tc.want+"agentforge-linux-"+arch || s.Dest != "agentforge" || s.Checksum == nil ||
					s.Checksum.URL != tc.want+"SHA256SUMS" || s.Checksum.Algorithm != "sha256" {
					t.Errorf("%s: source %+v", p, s)
				}
			}
		})
	}
}
