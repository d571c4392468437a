package oci

import (
	"context"

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
