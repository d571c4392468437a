package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bounds on what a registry's referrers answer may make us read.
const (
	maxReferrersPage  = 4 << 20
	maxReferrersPages = 64
	maxReferrers      = 10000
)

// Referrers lists the manifests whose subject is d, through the OCI 1.1
// referrers API (GET /v2/<name>/referrers/<digest>), following the Link
// header's next pages. supported is false when the registry has no such
// API (it answers 404, as the distribution spec has registries without it
// do, distribution among them, or another status that means the route is
// unknown: see noReferrersAPI). The list is what the registry says:
// callers must check each manifest's subject when they read it.
func (c *Client) Referrers(ctx context.Context, d digest.Digest) (list []imgspecv1.Descriptor, supported bool, err error) {
	if err := d.Validate(); err != nil {
		return nil, false, errs.Inputf("referrers of %q: %w", d, err)
	}
	what := c.repo.String() + " referrers of " + d.String()
	resp, body, err := c.Get(ctx, "referrers/"+d.String(), imgspecv1.MediaTypeImageIndex, maxReferrersPage)
	if err != nil {
		if noReferrersAPI(StatusCode(err)) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("referrers of %s@%s: %w", c.repo, d, err)
	}
	// A 200 that is not an index is a route the registry does not know
	// answered by something else (a web page, a catch-all): no API.
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt != imgspecv1.MediaTypeImageIndex && mt != "application/json" {
		return nil, false, nil
	}
	seen := map[digest.Digest]bool{}
	for page := 1; ; page++ {
		idx, err := ParseReferrersIndex(body)
		if err != nil {
			return nil, true, &errs.IntegrityError{What: what, Check: err.Error()}
		}
		for _, m := range idx.Manifests {
			if !seen[m.Digest] {
				seen[m.Digest] = true
				list = append(list, m)
			}
		}
		if len(list) > maxReferrers {
			return nil, true, &errs.IntegrityError{What: what, Check: fmt.Sprintf("more than %d referrers", maxReferrers)}
		}
		if NextLink(resp.Header) == "" {
			return list, true, nil
		}
		if page == maxReferrersPages {
			return nil, true, &errs.IntegrityError{What: what, Check: fmt.Sprintf("pagination: more than %d pages", maxReferrersPages)}
		}
		if resp, body, err = c.Next(ctx, resp, imgspecv1.MediaTypeImageIndex, maxReferrersPage); err != nil {
			return nil, true, fmt.Errorf("referrers of %s@%s, page %d: %w", c.repo, d, page+1, err)
		}
	}
}

// noReferrersAPI tells the statuses that mean a registry has no referrers
// API: 404, as the distribution spec has registries without it answer
// (distribution does), and what other registries answer for a route they
// do not know (400, 405, 501; the digest asked for is always valid, so 400
// cannot be about it). Authentication failures and server errors are not
// among them: they are errors, retried when worth it.
func noReferrersAPI(status int) bool {
	switch status {
	case http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return false
}

// ParseReferrersIndex reads a list of referrers, a referrers API page or
// a tag-schema index: an OCI image index (a media type, when given, must
// be that) whose entries each have a valid digest (a supported algorithm
// and its hex) and a positive size. Whatever the bytes, it returns an
// error rather than an entry that is not a digest.
func ParseReferrersIndex(body []byte) (*imgspecv1.Index, error) {
	var idx imgspecv1.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, fmt.Errorf("not an OCI image index: %w", err)
	}
	if idx.MediaType != "" && idx.MediaType != imgspecv1.MediaTypeImageIndex {
		return nil, fmt.Errorf("media type %q, want %s", idx.MediaType, imgspecv1.MediaTypeImageIndex)
	}
	for i, m := range idx.Manifests {
		if err := m.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("entry %d %q: %w", i+1, m.Digest, err)
		}
		if m.Size <= 0 {
			return nil, fmt.Errorf("entry %d %s: size %d", i+1, m.Digest, m.Size)
		}
	}
	return &idx, nil
}
