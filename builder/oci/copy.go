package oci

import (
	"context"
	"io"

	"github.com/agentforge/agentforge/images/progress"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// Copy copies src to dest with c/image's copy.Image and returns the
// manifest written. The signature policy accepts anything: Copy is for
// copies whose source agentforge checks itself (its own builds and staging
// layouts, cache entries pulled by digest and checked). Each call gets its
// own policy context, as a shared one races. With r non-nil the blobs are
// shown on r as "verb sha256:…" (see CopyProgress), through opts.Progress.
func Copy(ctx context.Context, dest, src types.ImageReference, opts *copy.Options, r progress.Reporter, verb string) ([]byte, error) {
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()
	ch, done := CopyProgress(r, verb)
	defer done()
	if opts == nil {
		opts = &copy.Options{}
	}
	if ch != nil {
		o := *opts
		o.Progress, o.ProgressInterval = ch, CopyProgressInterval
		opts = &o
	}
	return copy.Image(ctx, pc, dest, src, opts)
}

// Cancelable returns ref, whose image destination stops taking a blob at
// the first read after the copy's context is cancelled. c/image reads a
// layer through its compressor to the end before it looks at the context
// again: for a large layer, seconds after an interrupt. Only for a
// destination that needs nothing beyond the public ImageDestination
// interface, such as an OCI layout; containers-storage needs more.
func Cancelable(ref types.ImageReference) types.ImageReference {
	return cancelableRef{ref}
}

type cancelableRef struct{ types.ImageReference }

func (r cancelableRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	d, err := r.ImageReference.NewImageDestination(ctx, sys)
	if err != nil {
		return nil, err
	}
	return cancelableDest{d}, nil
}

type cancelableDest struct{ types.ImageDestination }

func (d cancelableDest) PutBlob(ctx context.Context, stream io.Reader, info types.BlobInfo, cache types.BlobInfoCache, isConfig bool) (types.BlobInfo, error) {
	return d.ImageDestination.PutBlob(ctx, ctxReader{ctx, stream}, info, cache, isConfig)
}

// ctxReader fails its reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
