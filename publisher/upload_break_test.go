package publisher

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// An upload whose connection breaks half way through a layer does not make
// the layer go again from its first byte: distribution keeps what it got,
// the session's GET says how much (204, Range: 0-N), and the rest goes in
// a PATCH from there (202) before the PUT with the digest (201); the log
// says so, and the destination is verified byte for byte. Both sources are
// covered: a registry's (mirror, read again with a Range) and a local
// layout's (publish, read again from its start and skipped).
//
// Distribution v2.8 (Debian's docker-registry) cannot say: its GET of a
// session checks the _state, which the break left behind, and cancels the
// upload (404 BLOB_UPLOAD_INVALID; fixed in v3 by
// distribution/distribution#3755). The upload then starts again in a new
// session, and the mirror succeeds all the same.
func TestUpload_GoesOnAfterABreak(t *testing.T) {
	for _, from := range []string{"registry", "layout", "registry to distribution v2.8"} {
		t.Run(from, func(t *testing.T) {
			ctx := context.Background()
			o := ocitest.Options{Layers: 1, Size: 4 << 20, Seed: 75, Uncompressed: true}
			v28 := from == "registry to distribution v2.8"
			var proxy *registrytest.Proxy
			if v28 {
				proxy = registrytest.NewProxy(t, registrytest.NewDebian(t))
				from = "registry"
			} else {
				proxy = registrytest.NewProxy(t, registrytest.New(t, registrytest.Options{}))
			}
			logger, logs := logtest.NewNullLogger()
			var src types.ImageReference
			regs := remote.Registries{Retry: remote.RetryPolicy{Delay: 5 * time.Millisecond}, Log: logger}
			if from == "registry" {
				up := registrytest.New(t, registrytest.Options{})
				regs.Insecure = []string{proxy.Host, up.Host}
				ref := registrytest.Push(t, registrytest.Open(t, regs), up.Host+"/up/agent:1", o)
				src = mustRef(t, "docker://"+ref.String())
			} else {
				regs.Insecure = []string{proxy.Host}
				src = ocitest.Layout(t, t.TempDir(), "v1", o)
			}
			opts := Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Verify: VerifyFull, KeepDigest: true}
			raw, layer := firstLayer(t, src, opts.Hosts.For(proxy.Host))
			proxy.Set(registrytest.Faults{BreakUploads: map[string]int{layer: 1}})
			dst := []Destination{dest(t, proxy.Host+"/mirror/agent", "1")}
			var rep *Report
			var err error
			if from == "registry" {
				rep, err = Mirror(ctx, src, dst, MirrorOptions{Options: opts})
			} else {
				rep, err = Publish(ctx, src, dst, opts)
			}
			if err != nil {
				t.Fatalf("a broken upload failed the %s: %v", from, err)
			}
			if proxy.BrokenUploads() != 1 {
				t.Fatalf("%d uploads broken, want 1", proxy.BrokenUploads())
			}
			if got, want := rep.Digest, digestOf(raw); got != want || !rep.Destinations[0].Verified {
				t.Errorf("published %s (verified %t), want %s", got, rep.Destinations[0].Verified, want)
			}
			// The session's requests after its POST, until the layer is
			// there: the broken PUT, the GET, the PATCH, the PUT.
			var session []string
			var path string
			for _, e := range proxy.Log() {
				if q, _ := url.ParseQuery(e.Query); q.Get("digest") == layer && e.Method == http.MethodPut && path == "" {
					path = e.Path
				}
				if path != "" && e.Path == path {
					session = append(session, fmt.Sprintf("%s %d", e.Method, e.Status))
				}
			}
			want := []string{"PUT 200", "GET 204", "PATCH 202", "PUT 201"}
			if v28 {
				want = []string{"PUT 200", "GET 404"}
			}
			if !slices.Equal(session, want) {
				t.Errorf("the layer's session: %q, want %q", session, want)
			}
			said := false
			for _, e := range logs.AllEntries() {
				said = said || strings.Contains(e.Message, "which the registry has")
			}
			if said == v28 {
				t.Errorf("the upload going on logged: %t, want %t", said, !v28)
			}
		})
	}
}

// firstLayer reads an OCI image's manifest and returns it with the digest
// of its first layer.
func firstLayer(t *testing.T, ref types.ImageReference, sys *types.SystemContext) ([]byte, string) {
	t.Helper()
	raw, err := oci.Manifest(context.Background(), ref, sys)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.OCI1FromManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	return raw, m.Layers[0].Digest.String()
}

// A layer upload that fails leaves no session on the destination: what the
// session took would otherwise stay until the registry purges old uploads
// (distribution: a week). The source fails before the first byte (503 to
// every read) or half way through the layer (every read broken there); the
// mirror fails, and no upload folder of distribution v3 has its data file.
// (A cancelled session's folder keeps its hash state, a few hundred bytes:
// v3.1.2 writes it again as the DELETE's handler closes the upload,
// distribution/distribution#4524.)
func TestUpload_FailedLeavesNoSession(t *testing.T) {
	for name, faults := range map[string]func(layer string) registrytest.Faults{
		"unavailable": func(l string) registrytest.Faults {
			return registrytest.Faults{UnavailableBlobs: map[string]int{l: -1}}
		},
		"breaks": func(l string) registrytest.Faults { return registrytest.Faults{BreakBlobs: map[string]int{l: -1}} },
	} {
		t.Run(name, func(t *testing.T) {
			o := ocitest.Options{Layers: 1, Size: 4 << 20, Seed: 76, Uncompressed: true}
			up, dst := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, up)
			regs := remote.Registries{Insecure: []string{up.Host, proxy.Host, dst.Host}, Retry: remote.RetryPolicy{Attempts: 2, Delay: 5 * time.Millisecond}}
			hosts := registrytest.Open(t, regs)
			ref := registrytest.Push(t, hosts, up.Host+"/up/agent:1", o)
			src := mustRef(t, "docker://"+strings.Replace(ref.String(), up.Host, proxy.Host, 1))
			_, layer := firstLayer(t, src, hosts.For(proxy.Host))
			proxy.Set(faults(layer))
			_, err := Mirror(context.Background(), src, []Destination{dest(t, dst.Host+"/mirror/agent", "1")}, MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyNone}})
			if err == nil {
				t.Fatal("the mirror succeeded without its layer")
			}
			var sessions, left []string
			filepath.WalkDir(dst.Root, func(path string, d fs.DirEntry, err error) error {
				switch {
				case err != nil:
				case d.IsDir() && filepath.Base(filepath.Dir(path)) == "_uploads":
					sessions = append(sessions, path)
				case d.Name() == "data" && strings.Contains(path, "/_uploads/"):
					left = append(left, path)
				}
				return nil
			})
			if len(sessions) == 0 {
				t.Fatal("no upload session was opened: the test tests nothing")
			}
			if len(left) > 0 {
				t.Errorf("upload data left on the destination: %q (mirror: %v)", left, err)
			}
		})
	}
}
