package update

import (
	"context"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images"
)

// The released image is compared with the definition it should have been
// built from: a definition bumped and committed whose release failed is
// current to the upstream checks, and behind here (with nothing to adopt:
// a release brings it level).
func TestCheck_Release(t *testing.T) {
	base := "sha256:" + strings.Repeat("1", 64)
	def := &images.Definition{Path: "x", Base: images.Base{Image: "docker.io/library/ubuntu:24.04", Digest: base},
		Labels: map[string]string{"io.agentforge.python.version": "3.11.16", "io.agentforge.remoting.version": "3355.v388858a_47b_33"}}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		behind string // what the Why names; "" when level
	}{
		{name: "level", labels: map[string]string{"io.agentforge.python.version": "3.11.16", "io.agentforge.remoting.version": "3355.v388858a_47b_33", baseDigestLabel: base, "other": "x"}},
		{name: "CPython not released", labels: map[string]string{"io.agentforge.python.version": "3.11.9", "io.agentforge.remoting.version": "3355.v388858a_47b_33", baseDigestLabel: base},
			behind: `io.agentforge.python.version "3.11.9", the definition "3.11.16"`},
		{name: "base not released", labels: map[string]string{"io.agentforge.python.version": "3.11.16", "io.agentforge.remoting.version": "3355.v388858a_47b_33", baseDigestLabel: "sha256:" + strings.Repeat("2", 64)},
			behind: baseDigestLabel},
		{name: "a label missing", labels: map[string]string{"io.agentforge.python.version": "3.11.16", baseDigestLabel: base},
			behind: `io.agentforge.remoting.version ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := imageWithLabels(t, map[string]string{"etc/os-release": "ID=ubuntu\n"}, tc.labels)
			rep := Check(context.Background(), def, Options{Kinds: []string{KindRelease}, Image: img})
			if len(rep.Problems) != 0 || len(rep.Findings) != 1 {
				t.Fatalf("%+v", rep)
			}
			f, outdated := rep.Findings[0], 0
			if tc.behind != "" {
				outdated = 1
			}
			if f.Outdated != (outdated == 1) || rep.Outdated != outdated || !strings.Contains(f.Why, tc.behind) || len(f.Set) != 0 {
				t.Errorf("%+v (outdated %d)", f, rep.Outdated)
			}
		})
	}
	if rep := Check(context.Background(), def, Options{Kinds: []string{KindRelease}}); len(rep.Problems) != 1 {
		t.Errorf("asked for without an image: %+v", rep)
	}
}
