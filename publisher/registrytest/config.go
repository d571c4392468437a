package registrytest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
)

// Endpoint is something a test reaches like a registry: a Registry, an
// OCI registry or a Proxy.
type Endpoint interface {
	endpoint() *Registry
}

func (r *Registry) endpoint() *Registry { return r }

func (p *Proxy) endpoint() *Registry { return &Registry{Host: p.Host, Scheme: "http"} }

// Config is the registry configuration that reaches every endpoint given:
// one auth file with each one's credentials, one CA bundle with each
// one's test CA, and the plain-HTTP ones as insecure.
func Config(t testing.TB, eps ...Endpoint) remote.Registries {
	t.Helper()
	var r remote.Registries
	creds := map[string][2]string{}
	var cas []byte
	for _, ep := range eps {
		e := ep.endpoint()
		if e.Scheme == "http" {
			r.Insecure = append(r.Insecure, e.Host)
		}
		if e.User != "" {
			creds[e.Host] = [2]string{e.User, e.Password}
		}
		if e.CAFile != "" {
			b, err := os.ReadFile(e.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			cas = append(cas, b...)
		}
	}
	if len(creds) > 0 {
		r.AuthFile = WriteAuthFile(t, creds)
	}
	if len(cas) > 0 {
		r.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(r.CAFile, cas, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// Hosts is Open(t, Config(t, eps...)).
func Hosts(t testing.TB, eps ...Endpoint) *remote.Hosts {
	t.Helper()
	return Open(t, Config(t, eps...))
}

// Push puts a synthetic image (or index, ocitest.Options.Platforms) at
// name (host/repo:tag) through hosts, byte for byte, and returns
// host/repo@digest.
func Push(t testing.TB, hosts *remote.Hosts, name string, o ocitest.Options) reference.Canonical {
	t.Helper()
	ctx := context.Background()
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	named = reference.TagNameOnly(named)
	src := ocitest.Layout(t, t.TempDir(), named.(reference.Tagged).Tag(), o)
	dst, err := docker.NewReference(named)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := oci.Copy(ctx, dst, src, &copy.Options{DestinationCtx: hosts.For(reference.Domain(named)), ImageListSelection: copy.CopyAllImages, PreserveDigests: true}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := reference.WithDigest(reference.TrimNamed(named), digest.FromBytes(raw))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Trio is what referrer tests copy between: a source with the OCI 1.1
// referrers API, a destination with it and one without (distribution),
// all with auth and TLS, and the configuration that reaches the three.
type Trio struct {
	Src, WithAPI *OCI
	Without      *Registry
	Config       remote.Registries
	Hosts        *remote.Hosts
}

// NewTrio starts the three registries of a Trio.
func NewTrio(t testing.TB) *Trio {
	t.Helper()
	r := &Trio{
		Src:     NewOCI(t, Options{Auth: true, TLS: true}),
		WithAPI: NewOCI(t, Options{Auth: true, TLS: true}),
		Without: New(t, Options{Auth: true, TLS: true}),
	}
	r.Config = Config(t, r.Src, r.WithAPI, r.Without)
	r.Hosts = Open(t, r.Config)
	return r
}

// Tagged is ref's repository with tag.
func Tagged(t testing.TB, ref reference.Named, tag string) reference.NamedTagged {
	t.Helper()
	tagged, err := reference.WithTag(reference.TrimNamed(ref), tag)
	if err != nil {
		t.Fatal(err)
	}
	return tagged
}
