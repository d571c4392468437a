package publisher

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
)

// A source that cannot serve a signature's or attestation's blob for a
// moment delays the mirror; it does not fail it: those blobs are retried
// like the image's. One that keeps failing fails that destination as a
// runtime error (exit 1), not as an integrity failure (exit 3), and leaves
// no tag there.
func TestMirror_SignatureBlobUnavailable(t *testing.T) {
	proxy, mir, regs, hosts, ref := unreliableUpstream(t, "up/agent:1", ocitest.Options{Layers: 1, Size: 512, Seed: 71})
	ctx := context.Background()
	key := testKey(t)
	if _, err := sign.SignAll(ctx, []reference.Canonical{ref}, key, []byte(signtest.SBOM), sign.Options{Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	blobOf := func(suffix string) string {
		tag, _ := attachments.TagRef(ref, ref.Digest(), suffix)
		a, err := attachments.Read(ctx, sign.Options{Hosts: hosts}, tag)
		if err != nil {
			t.Fatal(err)
		}
		return a.Manifest.Layers[0].Digest.String()
	}
	sig, att := blobOf(attachments.SuffixSignature), blobOf(attachments.SuffixAttestation)
	for i, tc := range []struct {
		name  string
		blobs map[string]int
		fails bool
	}{
		{"signature blob, two 503s", map[string]int{sig: 2}, false},
		{"attestation blob, one 503", map[string]int{att: 1}, false},
		{"signature blob, always 503", map[string]int{sig: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Set(registrytest.Faults{UnavailableBlobs: tc.blobs})
			before := proxy.Unavailable()
			repo := mir.Host + "/mirror/agent" + string(rune('a'+i))
			rep, err := Mirror(ctx, mustRef(t, "docker://"+proxy.Host+"/up/agent:1"), []Destination{dest(t, repo, "1")},
				MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}})
			if proxy.Unavailable() == before {
				t.Fatal("the fault was not met")
			}
			if !tc.fails {
				if err != nil {
					t.Fatalf("a passing 503 failed the mirror: %v", err)
				}
				if _, err := sign.CheckImage(ctx, canonicalAt(t, repo, ref.Digest()), key.Public(), sign.SBOMRequired, sign.Options{Hosts: hosts}); err != nil {
					t.Errorf("on the mirror: %v", err)
				}
				return
			}
			if err == nil || errors.Is(err, errs.ErrIntegrity) {
				t.Fatalf("got %v, want a runtime error (exit 1)", err)
			}
			if !strings.Contains(err.Error(), "503") {
				t.Errorf("the error does not say what failed: %v", err)
			}
			if rep == nil || rep.Destinations[0].Error == "" {
				t.Errorf("report %+v, want the destination's error", rep)
			}
			if got := tagDigest(t, Options{Hosts: hosts}, mir.Host, "mirror/agent"+string(rune('a'+i))+":1"); got != "" {
				t.Errorf("tagged %s without its signature", got)
			}
		})
	}
}

// A destination that acknowledges the copied signature (or attestation)
// and does not keep it gets no tag: what is copied before the tags is read
// back before them.
func TestMirror_DroppedSignatureLeavesNoTag(t *testing.T) {
	up := registrytest.New(t, registrytest.Options{})
	mir := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, mir)
	regs := remote.Registries{Insecure: []string{up.Host, mir.Host, proxy.Host}, Retry: remote.RetryPolicy{Delay: 5 * time.Millisecond}}
	hosts := registrytest.Open(t, regs)
	ctx := context.Background()
	ref := registrytest.Push(t, hosts, up.Host+"/up/agent:1", ocitest.Options{Layers: 1, Size: 512, Seed: 72})
	if _, err := sign.SignAll(ctx, []reference.Canonical{ref}, testKey(t), []byte(signtest.SBOM), sign.Options{Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	for i, drop := range []string{".sig?", ".att?"} {
		proxy.Set(registrytest.Faults{AcceptWithoutStoring: []string{drop}})
		repo := "mirror/agent" + string(rune('a'+i))
		_, err := Mirror(ctx, mustRef(t, "docker://"+up.Host+"/up/agent:1"), []Destination{dest(t, proxy.Host+"/"+repo, "1")},
			MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}})
		if err == nil || !strings.Contains(err.Error(), "does not serve") {
			t.Errorf("%s dropped: got %v, want an error saying the registry does not serve it", drop, err)
		}
		if proxy.Swallowed() == 0 {
			t.Fatal("the fault was not met")
		}
		if got := tagDigest(t, Options{Hosts: hosts}, mir.Host, repo+":1"); got != "" {
			t.Errorf("%s dropped: tagged %s", drop, got)
		}
	}
}

// A source that answers the mirror's manifest reads with 429 and
// Retry-After (a rate-limited registry: Docker Hub's pull limits) delays
// the mirror by the wait it asks for; it does not fail it. That holds for
// the tag's manifest and for an index's children.
func TestMirror_SourceManifestsRateLimited(t *testing.T) {
	proxy, mir, regs, hosts, ref := unreliableUpstream(t, "up/multi:1", ocitest.Options{Layers: 1, Size: 512, Seed: 73, Platforms: []string{"linux/amd64", "linux/arm64"}})
	raw, err := oci.Manifest(context.Background(), mustRef(t, "docker://"+ref.String()), hosts.For(proxy.Host))
	if err != nil {
		t.Fatal(err)
	}
	list, err := manifest.ListFromBlob(raw, manifest.GuessMIMEType(raw))
	if err != nil {
		t.Fatal(err)
	}
	child := list.Instances()[0].String()
	proxy.Set(registrytest.Faults{BusyManifests: map[string]int{"1": 1, child: 1}})
	start := time.Now()
	rep, err := Mirror(context.Background(), mustRef(t, "docker://"+proxy.Host+"/up/multi:1"), []Destination{dest(t, mir.Host+"/mirror/multi", "1")},
		MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Verify: VerifyFast}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Destinations[0].Digest != ref.Digest().String() {
		t.Errorf("mirrored %s, want %s", rep.Destinations[0].Digest, ref.Digest())
	}
	if n := proxy.Unavailable(); n != 2 {
		t.Errorf("%d reads refused, want the tag's and the child's (2)", n)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("took %s: the registry asked for 1 s before each retry", took)
	}
}

// unreliableUpstream is an upstream registry behind a proxy that injects
// faults, holding an image at name (repo:tag, pushed through the proxy),
// and an empty mirror registry; the configuration retries quickly.
func unreliableUpstream(t *testing.T, name string, o ocitest.Options) (*registrytest.Proxy, *registrytest.Registry, remote.Registries, *remote.Hosts, reference.Canonical) {
	t.Helper()
	proxy := registrytest.NewProxy(t, registrytest.New(t, registrytest.Options{}))
	mir := registrytest.New(t, registrytest.Options{})
	regs := remote.Registries{Insecure: []string{proxy.Host, mir.Host}, Retry: remote.RetryPolicy{Delay: 5 * time.Millisecond}}
	hosts := registrytest.Open(t, regs)
	return proxy, mir, regs, hosts, registrytest.Push(t, hosts, proxy.Host+"/"+name, o)
}

// A source whose connection breaks half way through a layer does not make
// the mirror read that layer again from its start: the read goes on from
// where it broke (a ranged GET, which distribution answers 206), and the
// log says so. The mirror is byte for byte the source.
func TestMirror_ReadsOnAfterABrokenLayer(t *testing.T) {
	proxy, mir, regs, hosts, ref := unreliableUpstream(t, "up/agent:1", ocitest.Options{Layers: 1, Size: 4 << 20, Seed: 74, Uncompressed: true})
	ctx := context.Background()
	_, layer := firstLayer(t, mustRef(t, "docker://"+ref.String()), hosts.For(proxy.Host))
	logger, logs := logtest.NewNullLogger()
	regs.Log = logger
	proxy.Set(registrytest.Faults{BreakBlobs: map[string]int{layer: 1}})
	rep, err := Mirror(ctx, mustRef(t, "docker://"+proxy.Host+"/up/agent:1"), []Destination{dest(t, mir.Host+"/mirror/agent", "1")},
		MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Verify: VerifyFull}})
	if err != nil {
		t.Fatalf("a broken layer read failed the mirror: %v", err)
	}
	if proxy.Broken() != 1 {
		t.Fatalf("%d reads broken, want 1", proxy.Broken())
	}
	if got := rep.Destinations[0].Digest; got != ref.Digest().String() {
		t.Errorf("mirrored %s, want %s", got, ref.Digest())
	}
	var statuses []int
	for _, e := range proxy.Log() {
		if e.Method == http.MethodGet && strings.HasSuffix(e.Path, "/blobs/"+layer) {
			statuses = append(statuses, e.Status)
		}
	}
	if !slices.Equal(statuses, []int{http.StatusOK, http.StatusPartialContent}) {
		t.Errorf("layer GETs answered %v, want the broken 200, then a 206 for the rest", statuses)
	}
	said := false
	for _, e := range logs.AllEntries() {
		said = said || strings.Contains(e.Message, "reading on from there")
	}
	if !said {
		t.Error("the resumed read was not logged")
	}
}
