package attachments_test

import (
	"context"
	"slices"
	"testing"

	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// trio is the options that reach a Trio's registries.
func trio(r *registrytest.Trio) attachments.Options { return attachments.Options{Hosts: r.Hosts} }

// copyAll copies d's attachments from src to dst.
func copyAll(ctx context.Context, src, dst reference.Named, d digest.Digest, o attachments.Options) (*attachments.Report, error) {
	return (&attachments.Copier{Options: o}).Copy(ctx, src, dst, d)
}

// planAll is copyAll as a dry run.
func planAll(ctx context.Context, src, dst reference.Named, d digest.Digest, o attachments.Options) (*attachments.Report, error) {
	return (&attachments.Copier{Options: o, DryRun: true}).Copy(ctx, src, dst, d)
}

func containsDigest(list []imgspecv1.Descriptor, d digest.Digest) bool {
	return slices.ContainsFunc(list, func(x imgspecv1.Descriptor) bool { return x.Digest == d })
}

// mustSign signs ref with k.
func mustSign(t *testing.T, ref reference.Canonical, k sign.Signer, o attachments.Options) {
	t.Helper()
	if _, err := sign.Sign(context.Background(), ref, k, o); err != nil {
		t.Fatal(err)
	}
}
