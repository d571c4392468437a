package builder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// cacheContainerfile is a small definition whose RUN steps each record 16
// random bytes: two builds without the cache never give the same image, so
// a build that gives the first build's digest took its steps from the
// cache. It has an argument declared early, a bind-mounted tarball (as
// python-agent mounts CPython's), and an argument declared late.
const cacheContainerfile = `ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY --chmod=0755 tools/busybox /bin/busybox
ARG EARLY
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /out && /bin/busybox head -c 16 /dev/urandom | /bin/busybox od -An -tx1 > /out/early && echo \"$EARLY\" >> /out/early"]
RUN --mount=type=bind,source=payload.tar,target=/payload.tar ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 16 /dev/urandom | /bin/busybox od -An -tx1 > /out/payload && /bin/busybox sha256sum /payload.tar >> /out/payload"]
ARG LATE
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 16 /dev/urandom | /bin/busybox od -An -tx1 > /out/late && echo \"$LATE\" >> /out/late"]
CMD ["/bin/busybox", "cat", "/out/early", "/out/payload", "/out/late"]
`

// The steps of cacheContainerfile, in order (the last is the LABEL step
// that buildah makes of the build's labels).
const (
	stepCopy = iota
	stepArgEarly
	stepRunEarly
	stepRunPayload
	stepArgLate
	stepRunLate
	stepCmd
	stepLabels
	cacheSteps
)

// cacheDef writes the definition with the given payload content and
// arguments and loads it.
func cacheDef(t *testing.T, payload, early, late string) *images.Definition {
	t.Helper()
	dir := t.TempDir()
	tarball := filepath.Join(dir, "payload.tar")
	if err := os.WriteFile(tarball, []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`name: cache-demo
version: "1"
base: {image: scratch}
sourceDateEpoch: 1700000000
args:
  EARLY: %q
  LATE: %q
sources:
  - name: unpacker
    url: file:///bin/busybox
    dest: tools/busybox
  - name: payload
    url: file://%s
    dest: payload.tar
`, early, late, tarball)
	def, err := images.Load(fstest.MapFS{
		"image.yaml":    {Data: []byte(yaml)},
		"Containerfile": {Data: []byte(cacheContainerfile)},
	}, "cache-demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// cacheBuild builds def into a new store with the layer cache and returns
// the result and the log.
func cacheBuild(t *testing.T, def *images.Definition, regs remote.Registries, cache *builder.LayerCache) (*builder.Result, string) {
	t.Helper()
	return cacheBuildIn(t, buildertest.NewStore(t, "vfs"), def, regs, cache)
}

func cacheBuildIn(t *testing.T, store storage.Store, def *images.Definition, regs remote.Registries, cache *builder.LayerCache) (*builder.Result, string) {
	t.Helper()
	var out, logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetLevel(logrus.InfoLevel)
	res, err := builder.Build(context.Background(), def, builder.BuildOptions{
		Store: store, Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, TmpDir: t.TempDir(),
		Hosts: registrytest.Open(t, regs), Cache: cache, Output: &out, Log: log,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s\n%s", err, out.String(), logs.String())
	}
	if cache != nil && (res.Cache == nil || res.Cache.Off != "") {
		t.Fatalf("no cache report: %+v\n%s", res.Cache, logs.String())
	}
	if strings.Contains(out.String(), "agentforge.invalid") {
		t.Errorf("the build output shows the recorder repository:\n%s", out.String())
	}
	return res, logs.String()
}

func repo(t *testing.T, s string) reference.Named {
	t.Helper()
	r, err := builder.ParseCacheRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// statuses lists the steps' statuses.
func statuses(r *builder.CacheReport) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Status)
	}
	return out
}

// want is a status list: hits for the first n steps, built after.
func hitsThenBuilt(n int) []string {
	var out []string
	for i := 0; i < cacheSteps; i++ {
		if i < n {
			out = append(out, builder.CacheHit)
		} else {
			out = append(out, builder.CacheBuilt)
		}
	}
	return out
}

// A build in a new, empty store takes every step from the cache that a
// first build filled, over TLS with basic auth, and gives the first
// build's digest; a build without the cache gives another (the RUN steps
// record random bytes), so the digest did come from the cache.
func TestCache_HitFromEmptyStoreSameDigest(t *testing.T) {
	buildertest.Builds(t)
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	regs := remote.Registries{AuthFile: reg.AuthFile, CAFile: reg.CAFile}
	cacheRepo := repo(t, reg.Host+"/cache/cache-demo")
	def := cacheDef(t, "payload 1", "e1", "l1")

	cold, logs := cacheBuild(t, def, regs, &builder.LayerCache{To: cacheRepo})
	if got := statuses(cold.Cache); !slices.Equal(got, hitsThenBuilt(0)) {
		t.Fatalf("cold build statuses %v\n%s", got, logs)
	}
	if cold.Cache.Pushed != cacheSteps || len(cold.Cache.Errors) > 0 {
		t.Fatalf("pushed %d of %d: %v\n%s", cold.Cache.Pushed, cacheSteps, cold.Cache.Errors, logs)
	}

	warm, logs := cacheBuild(t, def, regs, &builder.LayerCache{From: []reference.Named{cacheRepo}})
	if got := statuses(warm.Cache); !slices.Equal(got, hitsThenBuilt(cacheSteps)) {
		t.Fatalf("warm build statuses %v\n%s", got, logs)
	}
	if !strings.Contains(logs, "level=warning") || !strings.Contains(logs, "entries of "+cacheRepo.Name()+" are used without a signature check") {
		t.Errorf("no warning that unsigned entries are used:\n%s", logs)
	}
	if warm.Digest != cold.Digest || warm.ID != cold.ID {
		t.Fatalf("from the cache: %s (%s), cold: %s (%s)", warm.Digest, warm.ID, cold.Digest, cold.ID)
	}
	for i, s := range warm.Cache.Steps {
		if !strings.HasPrefix(s.From, cacheRepo.Name()+"@sha256:") || s.Key != cold.Cache.Steps[i].Key || s.Image != cold.Cache.Steps[i].Image {
			t.Errorf("step %d: %+v, cold %+v", i, s, cold.Cache.Steps[i])
		}
	}

	again, _ := cacheBuild(t, def, regs, nil)
	if again.Digest == cold.Digest {
		t.Fatalf("two builds without the cache gave %s: the test cannot tell a cache hit", again.Digest)
	}
}

// filledCache is a registry whose cache repository a first build of
// cacheDef("payload 1", "e1", "l1") filled.
func filledCache(t *testing.T, signer *builder.LayerCache) (remote.Registries, reference.Named, *builder.Result) {
	t.Helper()
	_, regs, cacheRepo, cold := filledCacheOn(t, signer)
	return regs, cacheRepo, cold
}

func filledCacheOn(t *testing.T, signer *builder.LayerCache) (*registrytest.Registry, remote.Registries, reference.Named, *builder.Result) {
	t.Helper()
	reg := registrytest.New(t, registrytest.Options{})
	regs := remote.Registries{Insecure: []string{reg.Host}}
	cacheRepo := repo(t, reg.Host+"/cache/cache-demo")
	to := &builder.LayerCache{To: cacheRepo}
	if signer != nil {
		to.Signer = signer.Signer
	}
	cold, logs := cacheBuild(t, cacheDef(t, "payload 1", "e1", "l1"), regs, to)
	if cold.Cache.Pushed != cacheSteps {
		t.Fatalf("pushed %d of %d steps: %v\n%s", cold.Cache.Pushed, cacheSteps, cold.Cache.Errors, logs)
	}
	return reg, regs, cacheRepo, cold
}

// What a change to an input invalidates: the step that takes it and every
// step after it, and nothing before it. The bind-mounted tarball is such
// an input (buildah's own key misses nothing here, but python-agent's
// CPython step is exactly this); so is a build argument, from its ARG on.
func TestCache_ChangedInputRebuildsFromItsStep(t *testing.T) {
	buildertest.Builds(t)
	regs, cacheRepo, cold := filledCache(t, nil)
	for _, tc := range []struct {
		name                 string
		payload, early, late string
		hits                 int
	}{
		{"changed tarball", "payload 2", "e1", "l1", stepRunPayload},
		{"build argument before the step", "payload 1", "e2", "l1", stepArgEarly},
		{"build argument after the step", "payload 1", "e1", "l2", stepArgLate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, logs := cacheBuild(t, cacheDef(t, tc.payload, tc.early, tc.late), regs, &builder.LayerCache{From: []reference.Named{cacheRepo}})
			if got := statuses(res.Cache); !slices.Equal(got, hitsThenBuilt(tc.hits)) {
				t.Fatalf("statuses %v, want %v\n%s", got, hitsThenBuilt(tc.hits), logs)
			}
			for i, s := range res.Cache.Steps {
				if same := s.Key == cold.Cache.Steps[i].Key; same != (i < tc.hits) {
					t.Errorf("step %d (%s): key %s, first build's %s", i, s.Instruction, s.Key, cold.Cache.Steps[i].Key)
				}
			}
			if res.Digest == cold.Digest {
				t.Errorf("a changed input gave the first build's digest %s", res.Digest)
			}
		})
	}
}

func testKey(t *testing.T) *sign.PrivateKey {
	t.Helper()
	priv, _, err := sign.GenerateKeyPair([]byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.ParsePrivateKey(priv, []byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// With a public key, --cache-from takes only entries signed with it: an
// unsigned entry, or one signed with another key, is ignored, and the log
// says so for each step; entries signed with the key are used.
func TestCache_SignedEntriesOnlyUnderAKey(t *testing.T) {
	buildertest.Builds(t)
	key, other := testKey(t), testKey(t)
	def := cacheDef(t, "payload 1", "e1", "l1")
	unsignedRegs, unsigned, _ := filledCache(t, nil)
	signedRegs, signed, cold := filledCache(t, &builder.LayerCache{Signer: key})
	for _, s := range cold.Cache.Steps {
		if !s.Signed {
			t.Fatalf("step %d pushed unsigned: %+v", s.Step, s)
		}
	}
	for _, tc := range []struct {
		name   string
		regs   remote.Registries
		repo   reference.Named
		key    *sign.PrivateKey
		hits   int
		reason string
	}{
		{"unsigned entries", unsignedRegs, unsigned, key, 0, "not signed"},
		{"entries signed with another key", signedRegs, signed, other, 0, "none of 1 verifies with the key"},
		{"entries signed with the key", signedRegs, signed, key, cacheSteps, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, logs := cacheBuild(t, def, tc.regs, &builder.LayerCache{From: []reference.Named{tc.repo}, Verifier: tc.key.Public()})
			if got := statuses(res.Cache); !slices.Equal(got, hitsThenBuilt(tc.hits)) {
				t.Fatalf("statuses %v\n%s", got, logs)
			}
			if strings.Contains(logs, "without a signature check") {
				t.Errorf("warned of unsigned entries with a verification key:\n%s", logs)
			}
			if tc.hits > 0 {
				if res.Digest != cold.Digest {
					t.Errorf("digest %s, the signed entries' build %s", res.Digest, cold.Digest)
				}
				return
			}
			// The first step's entry is ignored, so the stage stops there.
			ignored := res.Cache.Steps[0].Ignored
			if len(ignored) != 1 || !strings.Contains(ignored[0], tc.reason) {
				t.Errorf("ignored %q, want one naming %q", ignored, tc.reason)
			}
			if !strings.Contains(logs, "layer cache: ignoring "+tc.repo.Name()+"@sha256:") || !strings.Contains(logs, tc.reason) {
				t.Errorf("the log does not say the entry was ignored and why:\n%s", logs)
			}
		})
	}
}

// A signed entry tagged under another key is not used. Anyone who can
// push to the cache repository can tag an entry again, without the
// signing key, and the signature covers the entry's digest only: here the
// ARG LATE step's entry of a build with LATE=l1 is tagged under the key a
// build with LATE=l2 looks up. It extends the same parent with the same
// layers, so the structural check passes, and buildah's own match would
// not tell an ENV or LABEL step made of another argument's value either
// (containers/buildah#5575). The signature names the key it was made for.
func TestCache_SignedEntryUnderAnotherKeyIsIgnored(t *testing.T) {
	buildertest.Builds(t)
	key := testKey(t)
	_, regs, signed, cold := filledCacheOn(t, &builder.LayerCache{Signer: key})
	l2 := cacheDef(t, "payload 1", "e1", "l2")
	from := &builder.LayerCache{From: []reference.Named{signed}, Verifier: key.Public()}
	first, logs := cacheBuild(t, l2, regs, from)
	if got := statuses(first.Cache); !slices.Equal(got, hitsThenBuilt(stepArgLate)) {
		t.Fatalf("statuses %v\n%s", got, logs)
	}
	entry, wanted := cold.Cache.Steps[stepArgLate].Pushed, first.Cache.Steps[stepArgLate].Key
	if entry == "" || wanted == "" || wanted == cold.Cache.Steps[stepArgLate].Key {
		t.Fatalf("entry %q, key %q: the test needs an entry and another key", entry, wanted)
	}
	ctx := context.Background()
	c, err := registrytest.Open(t, regs).Client(signed)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Manifest(ctx, entry[strings.LastIndex(entry, "@")+1:], 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ MediaType string }
	if err := json.Unmarshal(raw, &m); err != nil || m.MediaType == "" {
		t.Fatalf("entry manifest (%v): %s", err, raw)
	}
	if err := c.PutManifest(ctx, wanted, m.MediaType, raw); err != nil {
		t.Fatal(err)
	}
	res, logs := cacheBuild(t, l2, regs, from)
	if got := statuses(res.Cache); !slices.Equal(got, hitsThenBuilt(stepArgLate)) {
		t.Fatalf("statuses %v: the entry tagged under another key was used\n%s", got, logs)
	}
	if ignored := res.Cache.Steps[stepArgLate].Ignored; len(ignored) != 1 || !strings.Contains(ignored[0], "signed with agentforge.io/cache-key") {
		t.Errorf("ignored %q, want the entry, for the key its signature names", ignored)
	}
}

// copyImage copies src to dest (docker:// references), compressing every
// layer with gzip.
func copyImage(t *testing.T, src, dest string, regs remote.Registries) {
	t.Helper()
	s, err := oci.ParseReference(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	copyRef(t, s, dest, regs, true)
}

// copyRef copies src to dest (a docker:// reference), as c/image pushes
// (layers compressed), with every layer gzip if forceGzip.
func copyRef(t *testing.T, src types.ImageReference, dest string, regs remote.Registries, forceGzip bool) {
	t.Helper()
	hosts, cleanup, err := regs.OpenTemp()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	d, err := oci.ParseReference(dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	defer pc.Destroy()
	srcSys := &types.SystemContext{}
	if dr := src.DockerReference(); dr != nil {
		srcSys = hosts.For(reference.Domain(dr))
	}
	destSys := hosts.For(reference.Domain(d.DockerReference()))
	if forceGzip {
		destSys.CompressionFormat = &compression.Gzip
	}
	if _, err := copy.Image(context.Background(), pc, d, src, &copy.Options{
		SourceCtx: srcSys, DestinationCtx: destSys, ForceCompressionFormat: forceGzip,
	}); err != nil {
		t.Fatal(err)
	}
}

// An entry is used only if it is what the step makes: a tag moved to
// another step's image, a blob changed on the registry, or an image pushed
// with compressed layers (which would not give the cold build's digest) is
// ignored, saying why, and the step runs.
func TestCache_BadEntriesIgnored(t *testing.T) {
	buildertest.Builds(t)
	for _, tc := range []struct {
		name   string
		spoil  func(t *testing.T, reg *registrytest.Registry, regs remote.Registries, repo reference.Named, cold *builder.Result)
		reason string
	}{
		{"tag moved to the step before's image", func(t *testing.T, reg *registrytest.Registry, regs remote.Registries, repo reference.Named, cold *builder.Result) {
			retag(t, regs, cold.Cache.Steps[stepRunPayload-1].Pushed, repo.Name()+":"+cold.Cache.Steps[stepRunPayload].Key)
		}, "history entries"},
		{"layer changed on the registry", func(t *testing.T, reg *registrytest.Registry, regs remote.Registries, repo reference.Named, cold *builder.Result) {
			// The payload step's own layer (its RUN wrote random bytes, so
			// no other step has it).
			d := cold.Layers[2].Digest
			p := filepath.Join(reg.Root, "docker/registry/v2/blobs/sha256", d[7:9], d[7:], "data")
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "Digest did not match"},
		{"compressed layers", func(t *testing.T, reg *registrytest.Registry, regs remote.Registries, repo reference.Named, cold *builder.Result) {
			copyImage(t, "docker://"+cold.Cache.Steps[stepRunPayload].Pushed, "docker://"+repo.Name()+":"+cold.Cache.Steps[stepRunPayload].Key, regs)
		}, "not an uncompressed layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, regs, cacheRepo, cold := filledCacheOn(t, nil)
			tc.spoil(t, reg, regs, cacheRepo, cold)
			res, logs := cacheBuild(t, cacheDef(t, "payload 1", "e1", "l1"), regs, &builder.LayerCache{From: []reference.Named{cacheRepo}})
			if got := statuses(res.Cache); !slices.Equal(got, hitsThenBuilt(stepRunPayload)) {
				t.Fatalf("statuses %v\n%s", got, logs)
			}
			ignored := res.Cache.Steps[stepRunPayload].Ignored
			if len(ignored) != 1 || !strings.Contains(ignored[0], tc.reason) {
				t.Fatalf("ignored %q, want one saying %q\n%s", ignored, tc.reason, logs)
			}
			if !strings.Contains(logs, "layer cache: ignoring") {
				t.Errorf("the log does not say so:\n%s", logs)
			}
		})
	}
}

// retag points tag (repo:tag) at the manifest src (repo@digest) names,
// the same bytes.
func retag(t *testing.T, regs remote.Registries, src, tag string) {
	t.Helper()
	hosts, cleanup, err := regs.OpenTemp()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	s, err := oci.ParseReference("docker://"+src, nil)
	if err != nil {
		t.Fatal(err)
	}
	sys := hosts.For(reference.Domain(s.DockerReference()))
	raw, err := oci.Manifest(context.Background(), s, sys)
	if err != nil {
		t.Fatal(err)
	}
	d, err := oci.ParseReference("docker://"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := d.NewImageDestination(context.Background(), sys)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if err := dest.PutManifest(context.Background(), raw, nil); err != nil {
		t.Fatal(err)
	}
}

// --registry-mirror applies to a cache repository as to any pull: with
// the repository's own host unreachable, entries come from the mirror.
// --insecure-registry and the auth file are the build's too.
func TestCache_FromThroughRegistryMirror(t *testing.T) {
	buildertest.Builds(t)
	mirror := registrytest.New(t, registrytest.Options{Auth: true})
	regs := remote.Registries{AuthFile: mirror.AuthFile, Insecure: []string{mirror.Host}}
	// What a pull-through mirror of cache.invalid holds.
	mirrored := repo(t, mirror.Host+"/cache.invalid/agents/cache")
	def := cacheDef(t, "payload 1", "e1", "l1")
	cold, logs := cacheBuild(t, def, regs, &builder.LayerCache{To: mirrored})
	if cold.Cache.Pushed != cacheSteps {
		t.Fatalf("pushed %d: %v\n%s", cold.Cache.Pushed, cold.Cache.Errors, logs)
	}
	regs.Mirrors = []remote.Mirror{{From: "cache.invalid", To: mirror.Host + "/cache.invalid"}}
	res, logs := cacheBuild(t, def, regs, &builder.LayerCache{From: []reference.Named{repo(t, "cache.invalid/agents/cache")}})
	if got := statuses(res.Cache); !slices.Equal(got, hitsThenBuilt(cacheSteps)) || res.Digest != cold.Digest {
		t.Fatalf("statuses %v, digest %s (cold %s)\n%s", got, res.Digest, cold.Digest, logs)
	}
	if from := res.Cache.Steps[0].From; !strings.HasPrefix(from, mirrored.Name()+"@") {
		t.Errorf("first entry from %s, want the mirror %s", from, mirrored)
	}
}

// A cache that cannot be written does not fail the build: the report and
// the log say which pushes failed.
func TestCache_PushFailureKeepsTheBuild(t *testing.T) {
	buildertest.Builds(t)
	regs := remote.Registries{Insecure: []string{"127.0.0.1:9"}, Retry: remote.RetryPolicy{Attempts: 1}}
	res, logs := cacheBuild(t, cacheDef(t, "payload 1", "e1", "l1"), regs, &builder.LayerCache{To: repo(t, "127.0.0.1:9/cache")})
	if res.Cache.Pushed != 0 || len(res.Cache.Errors) != cacheSteps || res.Cache.Built != cacheSteps {
		t.Fatalf("report %+v\n%s", res.Cache, logs)
	}
	if !strings.Contains(logs, "level=warning") || !strings.Contains(res.Cache.Errors[0], "127.0.0.1:9/cache:") {
		t.Errorf("errors %q\n%s", res.Cache.Errors, logs)
	}
}

// Steps buildah takes from the store's own cache (an earlier build in the
// same store) are reported as such and not pushed: buildah's local key is
// weaker than the layer cache's. --no-cache reads no entry but pushes
// every step.
func TestCache_LocalHitsNotPushedAndNoCache(t *testing.T) {
	buildertest.Builds(t)
	regs, cacheRepo, cold := filledCache(t, nil)
	store := buildertest.NewStore(t, "vfs")
	def := cacheDef(t, "payload 1", "e1", "l1")
	first, _ := cacheBuildIn(t, store, def, regs, nil)
	res, logs := cacheBuildIn(t, store, def, regs, &builder.LayerCache{To: repo(t, cacheRepo.Name()+"-other")})
	for i, s := range res.Cache.Steps {
		if s.Status != builder.CacheLocal || s.Pushed != "" {
			t.Errorf("step %d: %+v", i, s)
		}
	}
	if res.Digest != first.Digest || res.Cache.Pushed != 0 {
		t.Fatalf("digest %s (first %s), pushed %d\n%s", res.Digest, first.Digest, res.Cache.Pushed, logs)
	}

	var out bytes.Buffer
	nc, err := builder.Build(context.Background(), def, builder.BuildOptions{
		Store: buildertest.NewStore(t, "vfs"), Fetcher: &source.Fetcher{CacheDir: t.TempDir()}, TmpDir: t.TempDir(),
		Hosts: registrytest.Open(t, regs), Cache: &builder.LayerCache{From: []reference.Named{cacheRepo}, To: cacheRepo}, NoCache: true, Output: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(nc.Cache); !slices.Equal(got, hitsThenBuilt(0)) || nc.Cache.Pushed != cacheSteps || nc.Digest == cold.Digest {
		t.Fatalf("--no-cache: statuses %v, pushed %d, digest %s (cold %s)", got, nc.Cache.Pushed, nc.Digest, cold.Digest)
	}
}

// testdata/busybox has two stages, the second copying from the first: a
// new store takes both from the cache, and gets the same digest.
func TestCache_MultiStage(t *testing.T) {
	buildertest.Builds(t)
	reg := registrytest.New(t, registrytest.Options{})
	regs := remote.Registries{Insecure: []string{reg.Host}}
	cacheRepo := repo(t, reg.Host+"/cache/busybox")
	def := buildertest.LoadBusybox(t, nil)
	build := func(cache *builder.LayerCache) *builder.Result {
		var out bytes.Buffer
		res, err := builder.Build(context.Background(), def, builder.BuildOptions{
			Store: buildertest.NewStore(t, "vfs"), Fetcher: &source.Fetcher{CacheDir: buildertest.SourceCache(t)}, TmpDir: t.TempDir(),
			Hosts: registrytest.Open(t, regs), Cache: cache, Output: &out,
		})
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out.String())
		}
		return res
	}
	cold := build(&builder.LayerCache{To: cacheRepo})
	warm := build(&builder.LayerCache{From: []reference.Named{cacheRepo}})
	stages := map[string]int{}
	for _, s := range warm.Cache.Steps {
		if s.Status != builder.CacheHit {
			t.Errorf("step %s/%d (%s): %s", s.Stage, s.Step, s.Instruction, s.Status)
		}
		stages[s.Stage]++
	}
	if len(stages) != 2 || warm.Digest != cold.Digest || cold.Cache.Pushed != len(cold.Cache.Steps) {
		t.Fatalf("stages %v, digest %s (cold %s), pushed %d of %d", stages, warm.Digest, cold.Digest, cold.Cache.Pushed, len(cold.Cache.Steps))
	}
}

// A base image pulled from a registry has compressed layers there; the
// step images list them uncompressed. The cache entries must still be the
// step images' own bytes (c/image would otherwise reuse the registry's
// compressed copy of a base layer and rewrite the manifest), so that a
// build from the cache in a new store gives the cold build's digest.
func TestCache_BaseFromRegistry(t *testing.T) {
	buildertest.Builds(t)
	reg := registrytest.New(t, registrytest.Options{})
	regs := remote.Registries{Insecure: []string{reg.Host}}
	store := buildertest.NewStore(t, "vfs")
	base := buildertest.Busybox(t, store, nil)
	src, err := oci.ParseReference(base.ID, store)
	if err != nil {
		t.Fatal(err)
	}
	copyRef(t, src, "docker://"+reg.Host+"/library/busybox-demo:1", regs, false)
	def, err := images.Load(fstest.MapFS{
		"image.yaml": {Data: []byte("name: child\nversion: \"1\"\nbase: {image: " + reg.Host + "/library/busybox-demo:1}\nsourceDateEpoch: 1700000000\n")},
		"Containerfile": {Data: []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n" +
			`RUN ["/bin/sh", "-c", "head -c 16 /dev/urandom | od -An -tx1 > /etc/random"]` + "\nCMD [\"cat\", \"/etc/random\"]\n")},
	}, "child", nil)
	if err != nil {
		t.Fatal(err)
	}
	cacheRepo := repo(t, reg.Host+"/cache/child")
	cold, logs := cacheBuild(t, def, regs, &builder.LayerCache{To: cacheRepo})
	if cold.Cache.Pushed != len(cold.Cache.Steps) || len(cold.Cache.Errors) > 0 {
		t.Fatalf("pushed %d of %d: %v\n%s", cold.Cache.Pushed, len(cold.Cache.Steps), cold.Cache.Errors, logs)
	}
	warm, logs := cacheBuild(t, def, regs, &builder.LayerCache{From: []reference.Named{cacheRepo}})
	if warm.Cache.Hits != len(warm.Cache.Steps) || warm.Digest != cold.Digest {
		t.Fatalf("%d of %d steps from the cache, digest %s (cold %s)\n%s", warm.Cache.Hits, len(warm.Cache.Steps), warm.Digest, cold.Digest, logs)
	}
}
