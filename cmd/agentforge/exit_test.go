package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/publisher/registrytest"
)

// Bad input is exit 2 for every command, whatever the command: the same
// malformed references, references to nothing, bad tags and bad flags
// get the same answer everywhere (a missing source digest was exit 1 for
// index and mirror but 2 for verify and sign; build --tag 'bad tag' was 1).
func TestCLI_BadInputIsExit2Everywhere(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	missing := reg.Host + "/agents/none@sha256:" + strings.Repeat("ab", 32)
	store := []string{"--storage-root", filepath.Join(t.TempDir(), "s"), "--storage-driver", "vfs", "--insecure-registry", reg.Host}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"verify: malformed reference", []string{"verify", "docker://Not A Ref"}},
		{"verify: a digest that names nothing", []string{"verify", "docker://" + missing}},
		{"verify: bad --expect-digest", []string{"verify", "docker://" + missing, "--expect-digest", "sha256:nope"}},
		{"verify: a local image that does not exist", []string{"verify", "no-such-image:1"}},
		{"mirror: malformed reference", []string{"mirror", "Not A Ref", "--to", reg.Host + "/x"}},
		{"mirror: a digest that names nothing", []string{"mirror", missing, "--to", reg.Host + "/x"}},
		{"mirror: bad tag", []string{"mirror", missing, "--to", reg.Host + "/x", "--tag", "bad tag"}},
		{"mirror: no destination", []string{"mirror", missing}},
		{"mirror: destination without a registry", []string{"mirror", missing, "--to", "agents/x"}},
		{"index: malformed reference", []string{"index", "Not A Ref", "--to", reg.Host + "/x:1"}},
		{"index: a digest that names nothing", []string{"index", missing, "--to", reg.Host + "/x:1"}},
		{"index: bad tag", []string{"index", missing, "--to", reg.Host + "/x", "--tag", "-bad"}},
		{"sign: a digest that names nothing", []string{"sign", missing, "--sign-key", "/nonexistent.key"}},
		{"sign: malformed reference", []string{"sign", "Not A Ref", "--sign-key", "/nonexistent.key"}},
		{"publish: a local image that does not exist", []string{"publish", "no-such-image:1", "--to", reg.Host + "/x"}},
		{"publish: bad tag", []string{"publish", "no-such-image:1", "--to", reg.Host + "/x", "--tag", "bad tag"}},
		{"publish: no OCI layout there", []string{"publish", "oci:/nonexistent:1", "--to", reg.Host + "/x"}},
		{"build: bad tag", []string{"build", "../../testdata/busybox", "--tag", "bad tag"}},
		{"build: unknown definition", []string{"build", "/nonexistent/definition"}},
		{"build: bad --set", []string{"build", "../../testdata/busybox", "--set", "nokey"}},
		{"build: bad platform", []string{"build", "../../testdata/busybox", "--platform", "linux"}},
		{"run: missing command", []string{"run", "no-such-image:1"}},
		{"register: image not pinned", []string{"register", "--jenkins-url", "http://127.0.0.1:1", "--jenkins-user", "u", "--template", "t", "--label", "l", "--image", "repo:tag"}},
		{"release: no release file", []string{"release", "--config", "/nonexistent/release.yaml"}},
		{"python: bump of a built-in definition", []string{"python", "bump", "python-agent", "--dry-run", "--python-org", "http://127.0.0.1:1/"}},
		{"unknown flag", []string{"verify", "--no-such-flag", "x"}},
		{"unknown command", []string{"no-such-command"}},
		{"bad --output", []string{"version", "-o", "xml"}},
		{"bad --retries", []string{"mirror", missing, "--to", reg.Host + "/x", "--retries", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JENKINS_API_TOKEN", "token")
			code, _, stderr := cli(t, append(tc.args, store...)...)
			if code != 2 {
				t.Errorf("%s: exit %d, want 2\n%s", strings.Join(tc.args, " "), code, stderr)
			}
		})
	}
}
