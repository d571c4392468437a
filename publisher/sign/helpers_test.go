package sign

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
)

// env is a registry with auth and TLS, and the options to reach it.
type env struct {
	reg  *registrytest.Registry
	opts Options
}

func newEnv(t *testing.T) *env {
	t.Helper()
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	return &env{reg: reg, opts: Options{Hosts: openHosts(t, remote.Registries{AuthFile: reg.AuthFile, CAFile: reg.CAFile})}}
}

func openHosts(t *testing.T, r remote.Registries) *remote.Hosts {
	t.Helper()
	h, err := r.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// push puts a synthetic image (or index) at host/repo:latest and returns
// host/repo@digest.
func push(t *testing.T, host, repo string, regs remote.Registries, o ocitest.Options) reference.Canonical {
	t.Helper()
	ctx := context.Background()
	src := ocitest.Layout(t, t.TempDir(), "latest", o)
	named, err := reference.ParseNormalizedNamed(host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := docker.NewReference(named)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	hosts := openHosts(t, regs)
	raw, err := copy.Image(ctx, pc, dst, src, &copy.Options{DestinationCtx: hosts.For(host), ImageListSelection: copy.CopyAllImages, PreserveDigests: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := reference.WithDigest(reference.TrimNamed(named), digest.FromBytes(raw))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) push(t *testing.T, repo string, o ocitest.Options) reference.Canonical {
	return push(t, e.reg.Host, repo, remote.Registries{AuthFile: e.reg.AuthFile, CAFile: e.reg.CAFile}, o)
}

// keyPair writes a fresh cosign key pair under a temporary folder and
// returns the loaded private key and the two file paths.
func keyPair(t *testing.T, passphrase string) (*PrivateKey, string, string) {
	t.Helper()
	priv, pub, err := GenerateKeyPair([]byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := LoadPrivateKey(privPath, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	return k, privPath, pubPath
}

// caBundle concatenates PEM files into one.
func caBundle(t *testing.T, files ...string) string {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
