package publisher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// These tests push synthetic images (random layers made in Go, see
// builder/oci/ocitest; copied into a containers-storage store, which
// needs root) to real registries (distribution/v3 in-process) and
// cross-check with skopeo. The end-to-end test with a real buildah build is
// in cmd/agentforge (publish_test.go, release_test.go).

type local struct {
	store storage.Store
	ref   types.ImageReference
}

// buildLocal makes a 3-layer image in a fresh local store, as a build
// would leave it (layers uncompressed in storage); different greetings
// make different images.
func buildLocal(t *testing.T, greeting string) local {
	t.Helper()
	var seed uint64
	for _, c := range greeting {
		seed = seed*31 + uint64(c)
	}
	src := ocitest.Layout(t, t.TempDir(), "src", ocitest.Options{Seed: seed})
	store := ocitest.Store(t)
	return local{store: store, ref: ocitest.Local(t, store, src, "localhost/busybox-demo:1.0.0")}
}

// skopeoDigest asks skopeo for the sha256 of the raw manifest a registry
// serves, then copies the image to a dir: (skopeo checks every blob's digest).
func skopeoDigest(t *testing.T, r *registrytest.Registry, host, ref string) string {
	t.Helper()
	args := []string{"--tls-verify=false"}
	if r.Scheme == "https" {
		certs := t.TempDir()
		data, _ := os.ReadFile(r.CAFile)
		os.WriteFile(filepath.Join(certs, "ca.crt"), data, 0o600)
		args = []string{"--cert-dir", certs}
	}
	if r.AuthFile != "" {
		args = append(args, "--authfile", r.AuthFile)
	}
	raw, err := exec.Command("skopeo", append(append([]string{"inspect", "--raw"}, args...), "docker://"+host+"/"+ref)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	copyArgs := append([]string{"copy", "-q"}, srcFlags(args)...)
	if out, err := exec.Command("skopeo", append(copyArgs, "docker://"+host+"/"+ref, "dir:"+t.TempDir())...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy %s (validates blobs): %v\n%s", ref, err, out)
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func srcFlags(args []string) []string {
	var out []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--tls-verify"):
			out = append(out, "--src-tls-verify=false")
		case a == "--cert-dir":
			out = append(out, "--src-cert-dir")
		case a == "--authfile":
			out = append(out, "--src-authfile")
		default:
			out = append(out, a)
		}
	}
	return out
}

func TestPublish_TwoRegistriesSameDigestThenNothingToDo(t *testing.T) {
	img := buildLocal(t, "hello")
	plain := registrytest.New(t, registrytest.Options{})
	secure := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	opts := Options{
		Hosts:   registrytest.Open(t, remote.Registries{Insecure: []string{plain.Host}, CAFile: secure.CAFile, AuthFile: secure.AuthFile}),
		WorkDir: t.TempDir(),
	}
	dests := []Destination{dest(t, plain.Host+"/agents/busybox", "1.0.0", "latest"), dest(t, secure.Host+"/mirror/agents/busybox", "1.0.0")}
	rep, err := Publish(context.Background(), img.ref, dests, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Destinations {
		if d.Digest != rep.Digest || !d.Verified || d.BlobsPushed != 4 || d.BlobsSkipped != 0 || d.BytesPushed == 0 {
			t.Errorf("%s: %+v", d.Ref, d)
		}
	}
	// An independent client sees the same digest on both, by tag.
	if got := skopeoDigest(t, plain, plain.Host, "agents/busybox:1.0.0"); got != rep.Digest {
		t.Errorf("skopeo on upstream: %s, publish said %s", got, rep.Digest)
	}
	if got := skopeoDigest(t, secure, secure.Host, "mirror/agents/busybox:1.0.0"); got != rep.Digest {
		t.Errorf("skopeo on mirror: %s, publish said %s", got, rep.Digest)
	}

	// Again: every blob is already there, nothing is sent.
	start := time.Now()
	opts.Verify = VerifyFast
	again, err := Publish(context.Background(), img.ref, dests, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range again.Destinations {
		if d.Digest != rep.Digest || d.BlobsPushed != 0 || d.BlobsSkipped != 4 || d.BytesPushed != 0 || !d.Verified {
			t.Errorf("re-publish %s: %+v", d.Ref, d)
		}
	}
	t.Logf("unchanged re-publish to two registries (fast verify): %s", time.Since(start))
}

func TestPublish_TagNotMovedWithoutFlag(t *testing.T) {
	first, second := buildLocal(t, "one"), buildLocal(t, "two")
	reg := registrytest.New(t, registrytest.Options{})
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{reg.Host}}), WorkDir: t.TempDir(), Verify: VerifyFast}
	d := []Destination{dest(t, reg.Host+"/agents/busybox:1.0.0")}
	r1, err := Publish(context.Background(), first.ref, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	refused, err := Publish(context.Background(), second.ref, d, opts)
	var conflict *TagConflictError
	if !errors.As(err, &conflict) || conflict.Current != r1.Digest || !strings.Contains(err.Error(), reg.Host+"/agents/busybox:1.0.0") {
		t.Fatalf("want a tag conflict naming both digests, got %v", err)
	}
	// The report lists the tags that name its digest there: none.
	if refused == nil || len(refused.Destinations) != 1 || refused.Destinations[0].Tags == nil || len(refused.Destinations[0].Tags) != 0 {
		t.Errorf("report %+v, want no tag listed for the refused destination", refused)
	}
	if got := skopeoDigest(t, reg, reg.Host, "agents/busybox:1.0.0"); got != r1.Digest {
		t.Fatalf("the tag moved to %s", got)
	}
	opts.AllowOverwrite = true
	r2, err := Publish(context.Background(), second.ref, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := skopeoDigest(t, reg, reg.Host, "agents/busybox:1.0.0"); got != r2.Digest || got == r1.Digest {
		t.Fatalf("with --allow-overwrite the tag should be %s, is %s", r2.Digest, got)
	}
}

func TestVerifyRemote_CorruptingProxyNamesTheLayer(t *testing.T) {
	img := buildLocal(t, "hello")
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{reg.Host, proxy.Host}}), WorkDir: t.TempDir()}
	rep, err := Publish(context.Background(), img.ref, []Destination{dest(t, reg.Host+"/agents/busybox:1")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	hosts := opts.Hosts
	raw, err := oci.Manifest(context.Background(), mustRef(t, "docker://"+reg.Host+"/agents/busybox@"+rep.Digest), hosts.For(reg.Host))
	if err != nil {
		t.Fatal(err)
	}
	layer := layerDigests(t, raw)[1]
	proxy.Set(registrytest.Faults{CorruptBlob: layer})
	ref := mustRef(t, "docker://"+proxy.Host+"/agents/busybox@"+rep.Digest)
	verifyOpts := oci.VerifyOptions{SystemContext: hosts.For(proxy.Host), Mode: oci.Full}
	_, err = oci.Verify(context.Background(), ref, verifyOpts)
	if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "layer 1 "+layer) || !strings.Contains(err.Error(), proxy.Host) {
		t.Fatalf("want an integrity error naming layer 1 %s on %s, got %v", layer, proxy.Host, err)
	}
	proxy.Set(registrytest.Faults{})
	if _, err := oci.Verify(context.Background(), ref, verifyOpts); err != nil {
		t.Fatalf("without the fault: %v", err)
	}
}

func TestPublish_RetriesFailingUploads(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%t", drop), func(t *testing.T) {
			img := buildLocal(t, "hello")
			reg := registrytest.New(t, registrytest.Options{})
			proxy := registrytest.NewProxy(t, reg)
			proxy.Set(registrytest.Faults{FailEveryNthUpload: 3, DropConnection: drop})
			opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}, Retry: remote.RetryPolicy{Attempts: 6, Delay: 50 * time.Millisecond}}), WorkDir: t.TempDir()}
			rep, err := Publish(context.Background(), img.ref, []Destination{dest(t, proxy.Host+"/agents/busybox:1")}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Destinations[0].Verified {
				t.Fatalf("not verified: %+v", rep.Destinations[0])
			}
			failed := 0
			for _, e := range proxy.Log() {
				if e.Method == "PUT" && strings.Contains(e.Path, "/blobs/uploads/") && e.Status >= 500 {
					failed++
				}
			}
			if !drop && failed == 0 || drop && proxy.Dropped() == 0 {
				t.Fatalf("the fault was not injected (%d failed, %d dropped)", failed, proxy.Dropped())
			}
		})
	}
}

func TestPublish_KilledMidwayThenRerun(t *testing.T) {
	img := buildLocal(t, "hello")
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	ctx, cancel := context.WithCancel(context.Background())
	proxy.Set(registrytest.Faults{OnResponse: func(e registrytest.Entry) {
		if e.Method == "PUT" && strings.Contains(e.Path, "/blobs/uploads/") && e.Status == 201 {
			cancel() // killed right after the first blob landed
		}
	}})
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}}), WorkDir: t.TempDir()}
	d := []Destination{dest(t, proxy.Host+"/agents/busybox:1")}
	if _, err := Publish(ctx, img.ref, d, opts); err == nil {
		t.Fatal("the interrupted publish reported success")
	}
	proxy.Set(registrytest.Faults{})
	rep, err := Publish(context.Background(), img.ref, d, opts)
	if err != nil || !rep.Destinations[0].Verified || rep.Destinations[0].BlobsSkipped == 0 {
		t.Fatalf("rerun: %+v %v", rep, err)
	}
	// No tag was ever written before the manifest by digest, and that only
	// after every blob upload had finished.
	var lastBlob, manifestByDigest, tag time.Time
	for _, e := range proxy.Log() {
		switch {
		case e.Method == "PUT" && strings.Contains(e.Path, "/blobs/uploads/") && e.Status == 201:
			lastBlob = e.At
		case e.Method == "PUT" && strings.HasSuffix(e.Path, "/manifests/"+rep.Digest):
			manifestByDigest = e.At
		case e.Method == "PUT" && strings.HasSuffix(e.Path, "/manifests/1"):
			if !tag.IsZero() {
				t.Fatal("the tag was written twice")
			}
			tag = e.At
		}
	}
	if tag.IsZero() || manifestByDigest.IsZero() || tag.Before(manifestByDigest) || manifestByDigest.Before(lastBlob) {
		t.Fatalf("order: last blob %v, manifest %v, tag %v", lastBlob, manifestByDigest, tag)
	}
}

func TestPublish_WrongCredentials(t *testing.T) {
	img := buildLocal(t, "hello")
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	secret := "not-the-password-4711"
	auth := registrytest.WriteAuthFile(t, map[string][2]string{reg.Host: {reg.User, secret}})
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{CAFile: reg.CAFile, AuthFile: auth, Retry: remote.RetryPolicy{Delay: 2 * time.Second}}), WorkDir: t.TempDir()}
	start := time.Now()
	rep, err := Publish(context.Background(), img.ref, []Destination{dest(t, reg.Host+"/agents/busybox:1")}, opts)
	if err == nil || !strings.Contains(err.Error(), reg.Host) {
		t.Fatalf("want an error naming the registry, got %v", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(rep.Destinations[0].Error, secret) {
		t.Fatal("the password is in the error")
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("an authentication failure was retried (%s)", time.Since(start))
	}
}

func layerDigests(t *testing.T, raw []byte) []string {
	t.Helper()
	m, err := manifest.FromBlob(raw, manifest.GuessMIMEType(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.LayerInfos() {
		out = append(out, l.Digest.String())
	}
	return out
}

func mustRef(t *testing.T, s string) types.ImageReference {
	t.Helper()
	ref, err := oci.ParseReference(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
