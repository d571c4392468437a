package sign_test

import (
	"context"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// env is a registry with auth and TLS, and the options to reach it.
type env struct {
	reg  *registrytest.Registry
	opts sign.Options
}

func newEnv(t *testing.T) *env {
	t.Helper()
	reg := registrytest.New(t, registrytest.Options{Auth: true, TLS: true})
	return &env{reg: reg, opts: sign.Options{Hosts: registrytest.Hosts(t, reg)}}
}

// push puts a synthetic image at the env's repo:latest.
func (e *env) push(t *testing.T, repo string, o ocitest.Options) reference.Canonical {
	return registrytest.Push(t, e.opts.Hosts, e.reg.Host+"/"+repo+":latest", o)
}

var keyPair = signtest.KeyPair

// trio is the options that reach a Trio's registries.
func trio(r *registrytest.Trio) sign.Options { return sign.Options{Hosts: r.Hosts} }

// copyAll copies d's attachments from src to dst.
func copyAll(ctx context.Context, src, dst reference.Named, d digest.Digest, o sign.Options) (*attachments.Report, error) {
	return (&attachments.Copier{Options: o}).Copy(ctx, src, dst, d)
}
