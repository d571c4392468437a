package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/images/redact"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

func TestCLI_PublishVerifyAndRewrite(t *testing.T) {
	buildertest.Builds(t)
	sf := storeFlags(t)
	if code, _, stderr := cli(t, append([]string{"build", "../../testdata/busybox", "--cache-dir", buildertest.SourceCache(t)}, sf...)...); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	up := registrytest.New(t, registrytest.Options{})
	mirror := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	proxy := registrytest.NewProxy(t, up)
	global := append([]string{"--insecure-registry", up.Host, "--insecure-registry", proxy.Host, "--ca-file", mirror.CAFile, "--authfile", mirror.AuthFile}, sf...)
	work := []string{"--work-dir", t.TempDir()}

	args := append([]string{"publish", "busybox-demo:1.0.0", "--to", up.Host + "/agents/busybox", "--to", mirror.Host + "/up/agents/busybox", "-o", "json"}, append(global, work...)...)
	code, stdout, stderr := cli(t, args...)
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s", code, stderr)
	}
	var rep struct {
		Digest       string `json:"digest"`
		Destinations []struct {
			Ref          string   `json:"ref"`
			Digest       string   `json:"digest"`
			Tags         []string `json:"tags"`
			Verified     bool     `json:"verified"`
			BytesPushed  *int64   `json:"bytesPushed"`
			BlobsSkipped *int     `json:"blobsSkipped"`
			Seconds      *float64 `json:"seconds"`
		} `json:"destinations"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(rep.Destinations) != 2 {
		t.Fatalf("%s", stdout)
	}
	for _, d := range rep.Destinations {
		// Tags default to the local image's: the definition's 1.0.0 and latest.
		if d.Digest != rep.Digest || !d.Verified || strings.Join(d.Tags, ",") != "1.0.0,latest" || d.BytesPushed == nil || d.BlobsSkipped == nil || d.Seconds == nil {
			t.Errorf("%+v", d)
		}
	}

	// The proxy corrupts the last layer: verify docker:// exits 3 naming it.
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	code, stdout, _ = cli(t, append([]string{"verify", "docker://" + up.Host + "/agents/busybox@" + rep.Digest, "-o", "json"}, global...)...)
	if code != 0 || json.Unmarshal([]byte(stdout), &m) != nil || len(m.Layers) != 3 {
		t.Fatalf("verify upstream: exit %d %s", code, stdout)
	}
	proxy.Set(registrytest.Faults{CorruptBlob: m.Layers[2].Digest})
	code, _, stderr = cli(t, append([]string{"verify", "docker://" + proxy.Host + "/agents/busybox:1.0.0"}, global...)...)
	if code != 3 || !strings.Contains(stderr, "layer 2 "+m.Layers[2].Digest) {
		t.Fatalf("corrupt layer: exit %d\n%s", code, stderr)
	}

	// Another image under the same tag: refused, exit 1, both digests named.
	if code, _, stderr := cli(t, append([]string{"build", "../../testdata/busybox", "--set", "greeting=other", "--tag", "other", "--cache-dir", buildertest.SourceCache(t)}, sf...)...); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	code, _, stderr = cli(t, append([]string{"publish", "busybox-demo:other", "--to", up.Host + "/agents/busybox:1.0.0"}, append(global, work...)...)...)
	if code != 1 || !strings.Contains(stderr, "already points to "+rep.Digest) {
		t.Fatalf("tag conflict: exit %d\n%s", code, stderr)
	}

	// rewrite --pin resolves the digest from the mirror.
	cf := filepath.Join(t.TempDir(), "Containerfile")
	os.WriteFile(cf, []byte("FROM "+"registry.example/agents/busybox:1.0.0\n"), 0o644)
	code, _, stderr = cli(t, append([]string{"rewrite", "--mirror", "registry.example=" + mirror.Host + "/up", "--pin", "--write", cf}, global...)...)
	got, _ := os.ReadFile(cf)
	if code != 0 || string(got) != "FROM "+mirror.Host+"/up/agents/busybox:1.0.0@"+rep.Digest+"\n" {
		t.Fatalf("rewrite: exit %d %q\n%s", code, got, stderr)
	}
}

// publish --sign-key signs every destination before tagging it: a wrong
// passphrase is exit 2 before anything is sent; a destination whose
// signing fails (here its registry serves the signer other bytes for the
// digest: an integrity failure, exit 3) gets no tag, while the other one is
// signed and tagged.
func TestCLI_PublishSigningFailureLeavesNoTag(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "publish signing test")
	good := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	bad := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, bad)
	global := []string{"--insecure-registry", bad.Host, "--insecure-registry", proxy.Host, "--ca-file", good.CAFile, "--authfile", good.AuthFile, "--work-dir", t.TempDir()}
	key := filepath.Join(t.TempDir(), "cosign")
	if code, _, stderr := cli(t, "keygen", "--prefix", key); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	img, other := filepath.Join(t.TempDir(), "img"), filepath.Join(t.TempDir(), "other")
	ocitest.Layout(t, mkdir(t, img), "1", ocitest.Options{Layers: 1, Size: 2048, Seed: 31})
	ocitest.Layout(t, mkdir(t, other), "other", ocitest.Options{Layers: 1, Size: 2048, Seed: 32})
	// What the lying registry serves instead, pushed past the proxy.
	if code, _, stderr := cli(t, append([]string{"publish", "oci:" + other + ":other", "--to", bad.Host + "/agents/tool:other"}, global...)...); code != 0 {
		t.Fatalf("publish other: exit %d\n%s", code, stderr)
	}
	publish := append([]string{"publish", "oci:" + img + ":1", "--to", good.Host + "/agents/tool:1", "--to", proxy.Host + "/agents/tool:1",
		"--sign-key", key + ".key", "--verify", "none", "-o", "json"}, global...)

	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not it\n"), 0o600)
	if code, _, stderr := cli(t, append(publish, "--sign-passphrase-file", wrong)...); code != 2 {
		t.Fatalf("wrong passphrase: exit %d, want 2\n%s", code, stderr)
	}
	if n := len(proxy.Log()); n != 0 {
		t.Fatalf("a wrong passphrase sent %d requests", n)
	}

	proxy.Set(registrytest.Faults{OnResponse: func(e registrytest.Entry) {
		if _, d, ok := strings.Cut(e.Path, "/manifests/sha256:"); ok && e.Method == "PUT" && e.Status == 201 {
			proxy.Set(registrytest.Faults{SwapManifest: map[string]string{"sha256:" + d: "other"}})
		}
	}})
	code, stdout, stderr := cli(t, publish...)
	if code != 3 || !strings.Contains(stderr, proxy.Host+"/agents/tool:1") {
		t.Fatalf("signing on a lying registry: exit %d, want 3 naming %s\n%s", code, proxy.Host, stderr)
	}
	var rep struct {
		Digest       string
		Destinations []struct{ Error string }
		Signatures   []struct {
			Signature *struct{ Added bool }
			Error     string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Destinations) != 2 || len(rep.Signatures) != 2 {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if rep.Destinations[0].Error != "" || rep.Signatures[0].Signature == nil || !rep.Signatures[0].Signature.Added {
		t.Errorf("the good destination: %s", stdout)
	}
	if rep.Destinations[1].Error == "" || rep.Signatures[1].Signature != nil || rep.Signatures[1].Error == "" {
		t.Errorf("the failed destination: %s", stdout)
	}
	if code, _, stderr := cli(t, append([]string{"verify", "docker://" + good.Host + "/agents/tool:1", "--key", key + ".pub"}, global[:len(global)-2]...)...); code != 0 {
		t.Errorf("the good destination by tag, with the key: exit %d\n%s", code, stderr)
	}
	// Asked of the registry itself: no tag, the image only by digest.
	if code, _, stderr := cli(t, append([]string{"verify", "docker://" + bad.Host + "/agents/tool:1"}, global[:len(global)-2]...)...); code == 0 || !strings.Contains(stderr, "manifest unknown") {
		t.Errorf("the failed destination's tag: exit %d, want manifest unknown\n%s", code, stderr)
	}
	if code, _, stderr := cli(t, append([]string{"verify", "docker://" + bad.Host + "/agents/tool@" + rep.Digest}, global[:len(global)-2]...)...); code != 0 {
		t.Errorf("the failed destination by digest: exit %d\n%s", code, stderr)
	}
}

// A registry (or a proxy before it) whose error page echoes the request's
// Authorization header never gets the credentials printed: not in the
// error on stderr, not in the JSON, not cut short (c/image quotes the
// first 50 bytes of an error page), also at --log-level debug.
func TestCLI_CredentialsEchoedByARegistryAreRedacted(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{Auth: true})
	proxy := registrytest.NewProxy(t, reg)
	auth := registrytest.WriteAuthFile(t, map[string][2]string{proxy.Host: {reg.User, reg.Password}, reg.Host: {reg.User, reg.Password}})
	img := filepath.Join(t.TempDir(), "img")
	ocitest.Layout(t, mkdir(t, img), "1", ocitest.Options{Layers: 1, Size: 2048, Seed: 41})
	b64 := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	for _, path := range []string{"/blobs/uploads/", "/manifests/"} {
		t.Run(path, func(t *testing.T) {
			proxy.Set(registrytest.Faults{EchoAuthorization: path})
			code, stdout, stderr := cli(t, "publish", "oci:"+img+":1", "--to", proxy.Host+"/agents/tool:1", "--insecure-registry", proxy.Host,
				"--authfile", auth, "--work-dir", t.TempDir(), "--retries", "1", "--log-level", "debug", "-o", "json")
			if code == 0 {
				t.Fatalf("publish through a proxy refusing every %s succeeded", path)
			}
			if !strings.Contains(stdout+stderr, "Authorization: Basic "+redact.Mask) && !strings.Contains(stdout+stderr, "Authorization: "+redact.Mask) {
				t.Errorf("the echoed header is not shown masked:\n%s\n%s", stdout, stderr)
			}
			for _, leak := range []string{reg.Password, b64[:redact.MinCut]} {
				if strings.Contains(stdout, leak) || strings.Contains(stderr, leak) {
					t.Errorf("output shows %q:\nstdout: %s\nstderr: %s", leak, stdout, stderr)
				}
			}
		})
	}
}

// A command that fails after its work began still prints its report with
// -o json, and the report carries the failure as every failure does: a
// top-level "error" and "exitCode" (README, Output and exit codes), so that
// a script reading .error or .exitCode sees it.
func TestCLI_JSONReportOfAFailureCarriesTheError(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	img := filepath.Join(t.TempDir(), "img")
	ocitest.Layout(t, mkdir(t, img), "1", ocitest.Options{Layers: 1, Size: 1024, Seed: 7})
	if code, _, stderr := cli(t, "publish", "oci:"+img+":1", "--to", reg.Host+"/agents/tool:1", "--insecure-registry", reg.Host, "--work-dir", t.TempDir()); code != 0 {
		t.Fatalf("publish: exit %d\n%s", code, stderr)
	}
	const down = "127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"publish", []string{"publish", "oci:" + img + ":1", "--to", down + "/agents/tool:1", "--work-dir", t.TempDir()}},
		{"mirror", []string{"mirror", "docker://" + reg.Host + "/agents/tool:1", "--to", down + "/agents/tool:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--insecure-registry", reg.Host, "--insecure-registry", down, "--retries", "1", "-o", "json")
			code, stdout, stderr := cli(t, args...)
			var v struct {
				Error        string            `json:"error"`
				ExitCode     *int              `json:"exitCode"`
				Destinations []json.RawMessage `json:"destinations"`
			}
			if err := json.Unmarshal([]byte(stdout), &v); err != nil {
				t.Fatalf("stdout is not one JSON object (%v):\n%s", err, stdout)
			}
			if code != 1 || v.ExitCode == nil || *v.ExitCode != code || !strings.Contains(v.Error, down) || len(v.Destinations) != 1 {
				t.Errorf("exit %d; want 1 with the error and exit code next to the report:\n%s\n%s", code, stdout, stderr)
			}
		})
	}
}

// A credential typed into a reference, a destination or a URL on the
// command line (user:password@host) is never echoed back: not in the
// error, the JSON or the logs.
func TestCLI_CredentialsInArgumentsAreNotEchoed(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "docker://alice:S3cr3tPassw0rd@127.0.0.1:1/agents/py:1"},
		{"mirror", "docker://127.0.0.1:1/agents/py:1", "--to", "alice:S3cr3tPassw0rd@127.0.0.1:1/agents/py"},
		{"mirror", "docker://127.0.0.1:1/agents/py:1", "--to=https://alice:S3cr3t/Passw0rd@127.0.0.1:1/agents/py"},
	} {
		code, stdout, stderr := cli(t, append(args, "-o", "json", "--log-level", "debug")...)
		if code != 2 || strings.Contains(stdout+stderr, "S3cr3t") {
			t.Errorf("%v: exit %d (want 2)\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
}

// argCredentials finds the user information of a reference or URL, also
// as a key's value, and takes no text with a space in its user part for
// one: what it finds is masked in every line printed, errors and JSON
// alike.
func TestArgCredentials(t *testing.T) {
	for _, tc := range []struct {
		arg, user, password string
	}{
		{"docker://alice:S3cr3t@127.0.0.1:1/agents/py:1", "alice", "S3cr3t"},
		{"alice:S3cr3t@127.0.0.1:1/agents/py", "alice", "S3cr3t"},
		{"--to=https://alice:S3cr3t/Pw@127.0.0.1:1/agents/py", "alice", "S3cr3t/Pw"},
		{"docker://alice:p@ss@host/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "alice", "p@ss"},
		{"--set=python.url=https://alice:S3cr3t@mirror.example/p.tgz", "alice", "S3cr3t"},
		{"base.image=alice:S3cr3t@registry.example/ubuntu:24.04", "alice", "S3cr3t"},
		{"docker.io=alice:S3cr3t@mirror.example", "alice", "S3cr3t"},
		{"--registry-mirror=docker.io=alice:S3cr3t@mirror.example", "alice", "S3cr3t"},
		{"https://www.python.org/=https://alice:S3cr3t@mirror.example/python.org/", "alice", "S3cr3t"},
		{"--source-mirror=https://www.python.org/=https://alice:S3cr3t@mirror.example/", "alice", "S3cr3t"},
		{"docker://host:5000/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "", ""},
		{"--label=Jane Doe:jane@example.com", "", ""},
		{"Jane Doe:jane@example.com", "", ""},
		{"git@github.com:org/repo", "", ""},
	} {
		user, password, ok := argCredentials(tc.arg)
		if user != tc.user || password != tc.password || ok != (tc.password != "") {
			t.Errorf("%s: got %q %q %v, want %q %q", tc.arg, user, password, ok, tc.user, tc.password)
		}
	}
}
