package remote

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// What a registry answers is input: these fuzz targets hold the parsers of
// it to "an error or a value that is what it claims, never a panic". The
// seeds (f.Add, and testdata/fuzz/<target> for inputs that once failed)
// run as ordinary tests; `make fuzz` (part of `make test`) explores for a
// few seconds each.

// A referrers page (and its Link header): every entry returned is a valid
// digest with a size, safe to take apart and to put in a URL path; the next
// page, when there is one, is what a Link header's rel="next" names.
func FuzzParseReferrersIndex(f *testing.F) {
	d := digest.FromString("x").String()
	f.Add(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+d+`","size":10,"artifactType":"application/spdx+json"}]}`, `</v2/a/referrers/`+d+`?n=1>; rel="next"`)
	f.Add(`{"manifests":[{"digest":"abc","size":1}]}`, ``)
	f.Add(`{"manifests":[{"digest":":abc","size":1}]}`, `<x>;rel=next`)
	f.Add(`{"manifests":[{"digest":"sha256:../../etc","size":1}]}`, `<>; rel="prev next"`)
	f.Add(`{"manifests":[{"digest":"`+d+`","size":-1}]}`, `<a>, <b>; rel="next"`)
	f.Add(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`, `;;;`)
	f.Add(`[]`, `<`)
	f.Fuzz(func(t *testing.T, body, link string) {
		idx, err := ParseReferrersIndex([]byte(body))
		if err == nil {
			for _, m := range idx.Manifests {
				if m.Digest.Validate() != nil || m.Size <= 0 {
					t.Fatalf("entry %q size %d accepted", m.Digest, m.Size)
				}
				_ = m.Digest.Algorithm().String() + m.Digest.Encoded()
				if strings.ContainsAny(m.Digest.String(), "/?#%") {
					t.Fatalf("entry %q would escape a URL path", m.Digest)
				}
			}
		}
		h := http.Header{}
		h.Add("Link", link)
		if next := NextLink(h); next != "" && !strings.Contains(link, next) {
			t.Fatalf("next page %q is not in %q", next, link)
		}
	})
}

// A WWW-Authenticate challenge: the scheme and parameter names come back
// lower case, parameters are never empty-named, and a realm is only ever
// a value the header held (no parameter is made up).
func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`)
	f.Add(`Basic realm="registry"`)
	f.Add(`bearer realm=https://x/token, service=x`)
	f.Add(`Bearer realm="a\"b\\",scope=`)
	f.Add(`Bearer ,,,=,"`)
	f.Add(`Bearer realm="unterminated`)
	f.Add(`Bearer realm="https://a/t" error="insufficient_scope", Basic realm="x"`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, h string) {
		scheme, params := ParseChallenge(h)
		if scheme != strings.ToLower(scheme) {
			t.Fatalf("scheme %q not lower case", scheme)
		}
		for k, v := range params {
			if k == "" || k != strings.ToLower(k) {
				t.Fatalf("parameter name %q", k)
			}
			if len(v) > len(h) {
				t.Fatalf("parameter %s=%q is longer than the header", k, v)
			}
		}
		// What the client then does with the realm must not panic either.
		if realm, err := url.Parse(params["realm"]); err == nil {
			_ = realm.Redacted() + realm.Host + realm.Scheme
		}
	})
}
