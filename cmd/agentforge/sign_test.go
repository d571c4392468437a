package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
)

// The signing flow on the command line: keygen, publish, sign with an
// SBOM, verify --key, register --require-signature; the exit codes of
// what must fail; no passphrase in any output.
func TestCLI_KeygenSignVerifyRegister(t *testing.T) {
	signtest.Cosign(t) // first: the short tier skips it before any setup
	const pass = "keygen passphrase 42"
	t.Setenv("COSIGN_PASSWORD", pass)
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	global := []string{"--authfile", reg.AuthFile, "--ca-file", reg.CAFile}
	dir := t.TempDir()
	var outputs []string
	// run returns stdout; all holds stdout and stderr of the last run.
	var all string
	run := func(want int, args ...string) string {
		t.Helper()
		code, stdout, stderr := cli(t, append(args, global...)...)
		outputs = append(outputs, stdout, stderr)
		if code != want {
			t.Fatalf("%s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, stdout, stderr)
		}
		all = stdout + stderr
		return stdout
	}

	// keygen: two files, the private one 0600; not overwritten.
	prefix := filepath.Join(dir, "keys", "cosign")
	run(0, "keygen", "--prefix", prefix, "-o", "json")
	if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", st, err)
	}
	run(2, "keygen", "--prefix", prefix)
	otherPrefix := filepath.Join(dir, "other")
	run(0, "keygen", "--prefix", otherPrefix)
	// --force over a symbolic link replaces the link, never writes the
	// key through it.
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep me"), 0o644)
	linked := filepath.Join(dir, "linked")
	os.Symlink(victim, linked+".key")
	run(0, "keygen", "--prefix", linked, "--force")
	if data, _ := os.ReadFile(victim); string(data) != "keep me" {
		t.Errorf("keygen wrote through a symbolic link: %q", data)
	}
	if st, err := os.Lstat(linked + ".key"); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Errorf("forced private key: %v %v", st, err)
	}
	// A dangling symbolic link at PREFIX.pub: both paths are checked
	// before anything is written, so exit 2 leaves no PREFIX.key behind.
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "nowhere", "x"), dangling+".pub")
	run(2, "keygen", "--prefix", dangling)
	if _, err := os.Lstat(dangling + ".key"); err == nil {
		t.Errorf("keygen refused with exit 2 but left %s.key behind", dangling)
	}

	// An image on the registry.
	layout := filepath.Join(t.TempDir(), "layout")
	ocitest.Layout(t, mkdir(t, layout), "1", ocitest.Options{Layers: 1, Size: 2048, Seed: 77})
	stdout := run(0, "publish", "oci:"+layout+":1", "--to", reg.Host+"/agents/py:1", "--work-dir", t.TempDir(), "-o", "json")
	var pub struct{ Digest string }
	json.Unmarshal([]byte(stdout), &pub)
	ref := reg.Host + "/agents/py@" + pub.Digest
	if pub.Digest == "" {
		t.Fatalf("publish output: %s", stdout)
	}

	// Not signed yet: verify --key and register --require-signature refuse.
	run(3, "verify", "docker://"+ref, "--key", prefix+".pub")
	if !strings.Contains(all, "not signed") {
		t.Errorf("verify of an unsigned image does not say so:\n%s", all)
	}
	srv := jenkinsEmulator(t)
	t.Setenv("JENKINS_API_TOKEN", testToken)
	register := []string{"register", "--jenkins-url", srv.URL, "--jenkins-user", "ci-bot", "--image", ref, "--require-signature", prefix + ".pub"}
	run(3, register...)
	if n := len(srv.State().Clouds[0].Templates); n != 0 {
		t.Fatalf("an unsigned image reached Jenkins: %d templates", n)
	}

	// sign: a wrong passphrase is bad input and signs nothing.
	wrong := filepath.Join(dir, "wrong-pass")
	os.WriteFile(wrong, []byte("not it\n"), 0o600)
	run(2, "sign", ref, "--sign-key", prefix+".key", "--sign-passphrase-file", wrong)
	run(2, "sign", reg.Host+"/agents/py:1", "--sign-key", prefix+".key") // not by digest
	sbom := filepath.Join(dir, "sbom.spdx.json")
	os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"py","packages":[]}`), 0o644)
	// Not an SPDX document: bad input, found before anything is signed
	// (the signature below is still the first, Added).
	notSBOM := filepath.Join(dir, "not.json")
	os.WriteFile(notSBOM, []byte("SPDXVersion: SPDX-2.3\n"), 0o644)
	run(2, "sign", ref, "--sign-key", prefix+".key", "--sbom", notSBOM)
	stdout = run(0, "sign", ref, "--sign-key", prefix+".key", "--sbom", sbom, "-o", "json")
	var out struct {
		Signatures []struct {
			Signature struct{ Added bool }
			SBOM      struct{ Added bool }
		}
	}
	err := json.Unmarshal([]byte(stdout), &out)
	signed := out.Signatures
	if err != nil || len(signed) != 1 || !signed[0].Signature.Added || !signed[0].SBOM.Added {
		t.Fatalf("sign output: %v\n%s", err, stdout)
	}
	run(0, "sign", ref, "--sign-key", prefix+".key")
	if !strings.Contains(all, "already signed") {
		t.Errorf("second sign:\n%s", all)
	}

	// verify --key: the signature and the SBOM; another key is exit 3.
	stdout = run(0, "verify", "docker://"+ref, "--key", prefix+".pub", "--require-sbom", "-o", "json")
	var ver struct {
		OK        bool
		Signature struct{ Verified int }
		SBOM      struct{ Verified int }
	}
	if err := json.Unmarshal([]byte(stdout), &ver); err != nil || !ver.OK || ver.Signature.Verified != 1 || ver.SBOM.Verified != 1 {
		t.Fatalf("verify --key JSON: %v\n%s", err, stdout)
	}
	run(3, "verify", "docker://"+ref, "--key", otherPrefix+".pub")
	run(2, "verify", "docker://"+ref, "--require-sbom")

	// cosign agrees.
	if code, out := signtest.Verify(t, signtest.Env{AuthFile: reg.AuthFile, CAFile: reg.CAFile}, prefix+".pub", ref); code != 0 {
		t.Fatalf("cosign verify: exit %d\n%s", code, out)
	}

	// register: another key refused, the right one registers.
	run(3, append(register[:len(register)-1], otherPrefix+".pub")...)
	run(0, append(register[:len(register)-1], prefix+".pub")...)
	if n := len(srv.State().Clouds[0].Templates); n != 1 {
		t.Fatalf("%d templates after a verified register", n)
	}
	for _, o := range outputs {
		if strings.Contains(o, pass) {
			t.Fatal("the passphrase reached the output")
		}
	}
}
