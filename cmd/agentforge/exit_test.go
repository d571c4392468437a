package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"github.com/opencontainers/go-digest"
)

// Bad input is exit 2 for every command, whatever the command: the same
// malformed references, references to nothing, bad tags and bad flags
// get the same answer everywhere (a missing source digest was exit 1 for
// index and mirror but 2 for verify and sign; build --tag 'bad tag' was 1).
func TestCLI_BadInputIsExit2Everywhere(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	missing := reg.Host + "/agents/none@sha256:" + strings.Repeat("ab", 32)
	store := []string{"--storage-root", filepath.Join(t.TempDir(), "s"), "--storage-driver", "vfs", "--insecure-registry", reg.Host}
	// An image, a key, and SBOMs that do not describe the image: found
	// before anything is pushed.
	layout := filepath.Join(t.TempDir(), "layout")
	ocitest.Layout(t, mkdir(t, layout), "1", ocitest.Options{Layers: 1, Size: 256, Seed: 151})
	t.Setenv("COSIGN_PASSWORD", "")
	_, key, _ := signtest.KeyPair(t, "")
	other := digest.FromString("another image")
	sbomOf := func(checksum, purl digest.Digest) string {
		return `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"x","documentNamespace":"https://agentforge.invalid/x",` +
			`"creationInfo":{"created":"2024-01-01T00:00:00Z","creators":["Tool: agentforge"]},"packages":[{"name":"x","SPDXID":"SPDXRef-Image","downloadLocation":"NOASSERTION",` +
			`"filesAnalyzed":false,"checksums":[{"algorithm":"SHA256","checksumValue":"` + checksum.Encoded() + `"}],"licenseConcluded":"NOASSERTION","licenseDeclared":"NOASSERTION","copyrightText":"NOASSERTION",` +
			`"externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:oci/x@sha256%3A` + purl.Encoded() + `"}],"primaryPackagePurpose":"CONTAINER"}],` +
			`"relationships":[{"spdxElementId":"SPDXRef-DOCUMENT","relationshipType":"DESCRIBES","relatedSpdxElement":"SPDXRef-Image"}]}`
	}
	otherSBOM := filepath.Join(t.TempDir(), "other.spdx.json")
	os.WriteFile(otherSBOM, []byte(sbomOf(other, other)), 0o644)
	twoImages := filepath.Join(t.TempDir(), "two.spdx.json")
	os.WriteFile(twoImages, []byte(sbomOf(other, digest.FromString("a third image"))), 0o644)
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
		{"register: a Jenkins CA file that is not there", []string{"register", "--jenkins-url", "https://127.0.0.1:1", "--jenkins-user", "u", "--jenkins-ca-file", "/nonexistent/ca.pem", "--template", "t", "--label", "l", "--image", reg.Host + "/agents/py@sha256:" + strings.Repeat("ab", 32)}},
		{"register: image not pinned", []string{"register", "--jenkins-url", "http://127.0.0.1:1", "--jenkins-user", "u", "--template", "t", "--label", "l", "--image", "repo:tag"}},
		{"release: no release file", []string{"release", "--config", "/nonexistent/release.yaml"}},
		{"python: bump of a built-in definition", []string{"python", "bump", "python-agent", "--dry-run", "--python-org", "http://127.0.0.1:1/"}},
		{"unknown flag", []string{"verify", "--no-such-flag", "x"}},
		{"unknown command", []string{"no-such-command"}},
		{"bad --output", []string{"version", "-o", "xml"}},
		{"bad --retries", []string{"mirror", missing, "--to", reg.Host + "/x", "--retries", "0"}},
		{"register: an image Kubernetes cannot pull", []string{"register", "--jenkins-url", "http://127.0.0.1:1", "--jenkins-user", "u", "--template", "t", "--label", "l", "--image", "oci:/tmp/layout@sha256:" + strings.Repeat("ab", 32)}},
		{"register: an image with a capital in its path", []string{"register", "--jenkins-url", "http://127.0.0.1:1", "--jenkins-user", "u", "--template", "t", "--label", "l", "--image", reg.Host + "/Agents/py@sha256:" + strings.Repeat("ab", 32)}},
		{"publish: another image's SBOM, re-encoded", []string{"publish", "oci:" + layout + ":1", "--to", reg.Host + "/x", "--sign-key", key, "--sbom", otherSBOM, "--work-dir", t.TempDir()}},
		{"publish: an SBOM naming two images", []string{"publish", "oci:" + layout + ":1", "--to", reg.Host + "/x", "--sign-key", key, "--sbom", twoImages, "--work-dir", t.TempDir()}},
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
