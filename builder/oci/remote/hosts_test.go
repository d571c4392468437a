package remote

import (
	"strings"
	"testing"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// The generated registries.conf must be read by c/image the way we mean it:
// docker.io pulled through the mirror first, insecure hosts insecure.
func TestRegistriesConf_MirrorsAndInsecure(t *testing.T) {
	o := Registries{
		Mirrors:  []Mirror{{From: "docker.io", To: "127.0.0.1:5000/docker.io"}},
		Insecure: []string{"127.0.0.1:5000", "registry.lan:5001"},
	}
	dir := t.TempDir()
	h, err := o.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sys := h.ForPull()
	reg, err := sysregistriesv2.FindRegistry(sys, "docker.io/library/ubuntu:24.04")
	if err != nil || reg == nil {
		t.Fatalf("docker.io not configured: %v", err)
	}
	srcs, err := reg.PullSourcesFromReference(mustNamed(t, "docker.io/library/ubuntu:24.04"))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || !strings.HasPrefix(srcs[0].Reference.String(), "127.0.0.1:5000/docker.io/library/ubuntu") || !srcs[0].Endpoint.Insecure || srcs[1].Endpoint.Location != "docker.io" {
		t.Fatalf("pull sources: %+v", srcs)
	}
	lan, err := sysregistriesv2.FindRegistry(sys, "registry.lan:5001/x/y:1")
	if err != nil || lan == nil || !lan.Insecure {
		t.Fatalf("registry.lan:5001 should be insecure: %+v %v", lan, err)
	}
}

func mustNamed(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A host that is both a mirror's source and insecure stays insecure; and
// the system context for one host (pushes, verification) ignores the
// machine's registries.conf mirrors.
func TestRegistriesConf_InsecureMirrorSourceAndDirect(t *testing.T) {
	o := Registries{
		Mirrors:  []Mirror{{From: "registry.lan:5001", To: "127.0.0.1:5000/lan"}},
		Insecure: []string{"registry.lan:5001"},
	}
	h, err := o.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := sysregistriesv2.FindRegistry(h.ForPull(), "registry.lan:5001/x/y:1")
	if err != nil || reg == nil || !reg.Insecure {
		t.Fatalf("registry.lan:5001 should stay insecure: %+v %v", reg, err)
	}
	direct, err := sysregistriesv2.FindRegistry(h.For("registry.lan:5001"), "registry.lan:5001/x/y:1")
	if err != nil || direct != nil {
		t.Fatalf("For() must not see mirrors: %+v %v", direct, err)
	}
}
