package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
)

// cacheJSON is the part of build's JSON output these tests read.
type cacheJSON struct {
	Digest string `json:"digest"`
	Cache  struct {
		Hits, Built, Pushed int
		Steps               []struct {
			Key, Status, From, Pushed string
			Signed                    bool
			Ignored                   []string
		}
	} `json:"cache"`
}

// build --cache-to with --sign-key fills a cache the real cosign accepts;
// build --cache-from --cache-verify-key in a new store takes every step
// from it and gives the same digest; with another key it takes none and
// says why.
func TestCLI_BuildLayerCache(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
	buildertest.Builds(t)
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "cache test")
	key, other := filepath.Join(dir, "cosign"), filepath.Join(dir, "other")
	for _, k := range []string{key, other} {
		if code, _, stderr := cli(t, "keygen", "--prefix", k); code != 0 {
			t.Fatalf("keygen: %s", stderr)
		}
	}
	repo := reg.Host + "/cache/busybox"
	global := []string{"--ca-file", reg.CAFile, "--authfile", reg.AuthFile, "--cache-dir", buildertest.SourceCache(t)}
	build := func(args ...string) cacheJSON {
		t.Helper()
		code, stdout, stderr := cli(t, append(append(append([]string{"build", "../../testdata/busybox", "-o", "json"}, args...), global...), storeFlags(t)...)...)
		if code != 0 {
			t.Fatalf("build %v: exit %d\n%s", args, code, stderr)
		}
		var r cacheJSON
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		return r
	}

	cold := build("--cache-to", repo, "--sign-key", key+".key")
	if cold.Cache.Pushed == 0 || cold.Cache.Pushed != len(cold.Cache.Steps) {
		t.Fatalf("cold build: %+v", cold.Cache)
	}
	for _, s := range cold.Cache.Steps {
		if !s.Signed || !strings.HasPrefix(s.Pushed, repo+"@sha256:") {
			t.Fatalf("step not pushed and signed: %+v", s)
		}
	}
	// The entries are cosign's: cosign verify accepts the last one.
	cfg := filepath.Join(t.TempDir(), "config.json")
	data, _ := os.ReadFile(reg.AuthFile)
	os.WriteFile(cfg, data, 0o600)
	if code, out := signtest.Verify(t, signtest.Env{AuthFile: cfg, CAFile: reg.CAFile}, key+".pub", cold.Cache.Steps[len(cold.Cache.Steps)-1].Pushed); code != 0 {
		t.Fatalf("cosign verify: exit %d\n%s", code, out)
	}

	warm := build("--cache-from", repo, "--cache-verify-key", key+".pub")
	if warm.Digest != cold.Digest || warm.Cache.Hits != len(warm.Cache.Steps) || warm.Cache.Built != 0 {
		t.Fatalf("warm build: digest %s (cold %s), %+v", warm.Digest, cold.Digest, warm.Cache)
	}

	code, stdout, stderr := cli(t, append(append([]string{"build", "../../testdata/busybox", "--cache-from", repo, "--cache-verify-key", other + ".pub"}, global...), storeFlags(t)...)...)
	if code != 0 {
		t.Fatalf("build with another key: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "layer cache: ignoring "+repo+"@sha256:") || !strings.Contains(stdout, fmt.Sprintf("0 of %d steps from the cache", len(cold.Cache.Steps))) || !strings.Contains(stdout, "ignored "+repo+"@sha256:") {
		t.Errorf("text output and log should say the entries were ignored:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// Wrong cache settings are bad input (exit 2) found before anything is
// built or pushed.
func TestCLI_LayerCacheBadInput(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "x")
	if code, _, stderr := cli(t, "keygen", "--prefix", filepath.Join(dir, "k")); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	sf := storeFlags(t)
	def := "../../testdata/busybox"
	release := func(cache string) string {
		p := filepath.Join(t.TempDir(), "release.yaml")
		os.WriteFile(p, []byte("definition: "+def+"\ndestinations: [127.0.0.1:5000/a/b]\ncache:\n"+cache), 0o644)
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"verify key without cache-from", []string{"build", def, "--cache-to", "127.0.0.1:5000/c", "--cache-verify-key", filepath.Join(dir, "k.pub")}, "--cache-verify-key checks the entries of --cache-from"},
		{"sign key without cache-to", []string{"build", def, "--sign-key", filepath.Join(dir, "k.key")}, "give --cache-to"},
		{"tagged repository", []string{"build", def, "--cache-to", "127.0.0.1:5000/c:latest"}, "without a tag"},
		{"repository with a digest", []string{"build", def, "--cache-from", "127.0.0.1:5000/c@sha256:2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"}, "without a digest"},
		{"bad port", []string{"build", def, "--cache-from", "127.0.0.1:99999/c"}, `port "99999"`},
		{"missing verify key", []string{"build", def, "--cache-from", "127.0.0.1:5000/c", "--cache-verify-key", "/nonexistent.pub"}, "--cache-verify-key: public key"},
		{"not a public key", []string{"build", def, "--cache-from", "127.0.0.1:5000/c", "--cache-verify-key", filepath.Join(dir, "k.key")}, "--cache-verify-key"},
		{"podman service", []string{"build", def, "--cache-to", "127.0.0.1:5000/c", "--podman-url", "unix:///nonexistent.sock"}, "no registry layer cache"},
		{"release: verifyKey without from", []string{"release", "--config", release("  to: 127.0.0.1:5000/c\n  verifyKey: " + filepath.Join(dir, "k.pub") + "\n")}, "cache.verifyKey checks the entries of cache.from"},
		{"release: unknown key", []string{"release", "--config", release("  form: [127.0.0.1:5000/c]\n")}, "field form not found"},
		{"release: tagged repository", []string{"release", "--config", release("  from: [127.0.0.1:5000/c:1]\n")}, "cache.from: cache repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cli(t, append(tc.args, sf...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want 2 with %q in:\n%s", code, tc.want, stderr)
			}
		})
	}
}

// A release file's cache block is the build's cache, and release's
// --sign-key signs its entries.
func TestCLI_ReleaseLayerCache(t *testing.T) {
	buildertest.Builds(t)
	up := registrytest.New(t, registrytest.Options{})
	dir := t.TempDir()
	t.Setenv("AGENTFORGE_CACHE", buildertest.SourceCache(t))
	t.Setenv("COSIGN_PASSWORD", "release cache")
	key := filepath.Join(dir, "cosign")
	if code, _, stderr := cli(t, "keygen", "--prefix", key); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	cfg := filepath.Join(dir, "release.yaml")
	os.WriteFile(cfg, []byte(`definition: ../../testdata/busybox
destinations: [`+up.Host+`/agents/busybox]
cache:
  from: [`+up.Host+`/cache/busybox]
  to: `+up.Host+`/cache/busybox
  verifyKey: `+key+`.pub
`), 0o644)
	var runs []struct{ Image cacheJSON }
	for i := 0; i < 2; i++ {
		code, stdout, stderr := cli(t, append([]string{"release", "--config", cfg, "-o", "json", "--sign-key", key + ".key", "--insecure-registry", up.Host}, storeFlags(t)...)...)
		if code != 0 {
			t.Fatalf("release %d: exit %d\n%s", i+1, code, stderr)
		}
		var r struct{ Image cacheJSON }
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		runs = append(runs, r)
	}
	first, second := runs[0].Image, runs[1].Image
	if first.Cache.Pushed == 0 || first.Cache.Pushed != len(first.Cache.Steps) || !first.Cache.Steps[0].Signed {
		t.Errorf("first release's cache: %+v", first.Cache)
	}
	if second.Cache.Hits != len(second.Cache.Steps) || second.Digest != first.Digest {
		t.Errorf("second release (new store): digest %s (first %s), cache %+v", second.Digest, first.Digest, second.Cache)
	}
}
