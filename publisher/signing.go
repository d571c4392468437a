package publisher

import (
	"context"

	"github.com/agentforge/agentforge/publisher/sign"
	"go.podman.io/image/v5/docker/reference"
)

// Sign signs the digest every successful destination of a publish, index
// or release serves (Result.Ref, repo@digest) with s, in cosign's format,
// and attaches sbom (when not nil) as a signed SPDX attestation; see
// sign.SignAll. Failed destinations (Result.Error) are skipped. Registries
// are reached as opts.Registries says. The entries follow results, one
// each (an empty one for a skipped destination).
func Sign(ctx context.Context, results []Result, s sign.Signer, sbom []byte, opts Options) ([]sign.Signed, error) {
	hosts, cleanup, err := opts.Registries.OpenTemp()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var refs []reference.Canonical
	var at []int
	for i, r := range results {
		if r.Error != "" {
			continue
		}
		ref, err := sign.ParseRef(r.Ref)
		if err != nil {
			return nil, err
		}
		refs = append(refs, ref)
		at = append(at, i)
	}
	got, err := sign.SignAll(ctx, refs, s, sbom, sign.Options{Hosts: hosts, Log: opts.Log})
	out := make([]sign.Signed, len(results))
	for j, i := range at {
		out[i] = got[j]
	}
	return out, err
}
