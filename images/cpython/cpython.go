// Package cpython finds CPython patch releases on python.org (or a mirror of
// its /ftp/python/ tree) and the sha256 python.org publishes for them.
package cpython

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/httpget"
)

// DefaultBase is python.org; its /ftp/python/ listing names every release.
const DefaultBase = "https://www.python.org"

// Release is one CPython release's source tarball.
type Release struct {
	Series  string `json:"series"`
	Version string `json:"version"`
	URL     string `json:"url"`
	// SHA256 is the tarball's digest as python.org's sigstore bundle states
	// it (empty when there is no bundle). It is a claim to check, not a check.
	SHA256 string `json:"sha256,omitempty"`
}

// Finder looks releases up.
type Finder struct {
	// Base is python.org or a mirror of it; "" means DefaultBase.
	Base   string
	Client *http.Client
	// Rewrite, when set, maps each URL before it is read (the source
	// mirrors); Release.URL stays the one under Base.
	Rewrite func(url string) string
	// Format is the tarball's: "tar.xz" (the default) or "tgz". Each has
	// its own sha256 and sigstore bundle.
	Format string
}

func (f *Finder) format() string {
	if f.Format == "" {
		return "tar.xz"
	}
	return f.Format
}

func (f *Finder) base() string {
	if f.Base == "" {
		return DefaultBase
	}
	return strings.TrimSuffix(f.Base, "/")
}

func (f *Finder) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{Timeout: time.Minute}
}

// Latest returns the newest published patch release of series ("3.11"):
// the highest 3.11.N in the /ftp/python/ listing whose Python-3.11.N.tar.xz
// (or f.Format) exists (a directory can appear before its files do).
func (f *Finder) Latest(ctx context.Context, series string) (*Release, error) {
	if !regexp.MustCompile(`^3\.\d+$`).MatchString(series) {
		return nil, errs.Inputf("series %q: want 3.N", series)
	}
	// The listing is an HTML page: only a web server gives one. The parse
	// error is left out, as it quotes the URL whole (credentials too).
	if u, err := url.Parse(f.base()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.Inputf("python.org base %q: want an http:// or https:// URL", httpget.RedactURL(f.base()))
	}
	listing, err := f.get(ctx, f.base()+"/ftp/python/", 4<<20)
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`href="(` + regexp.QuoteMeta(series) + `\.(\d+))/"`)
	var patches []int
	seen := map[int]bool{}
	for _, m := range re.FindAllStringSubmatch(string(listing), -1) {
		n, _ := strconv.Atoi(m[2])
		if !seen[n] {
			seen[n] = true
			patches = append(patches, n)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(patches)))
	for _, n := range patches {
		v := fmt.Sprintf("%s.%d", series, n)
		tarball := fmt.Sprintf("%s/ftp/python/%s/Python-%s.%s", f.base(), v, v, f.format())
		ok, err := f.exists(ctx, tarball)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		r := &Release{Series: series, Version: v, URL: tarball}
		sum, err := f.sigstoreDigest(ctx, tarball+".sigstore")
		var status *httpget.StatusError
		switch {
		case err == nil:
			r.SHA256 = sum
		case errors.As(err, &status) && status.StatusCode == http.StatusNotFound:
			// No bundle: the caller must know the sha256 some other way.
		default:
			// A bundle that could not be read is not "no bundle": the
			// caller would be told to find the sha256 itself.
			return nil, fmt.Errorf("%s's sigstore bundle: %w", v, err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("no %s.N release with a source tarball at %s/ftp/python/", series, f.base())
}

// sigstoreDigest reads the sha256 a sigstore bundle signs
// (messageSignature.messageDigest, base64).
func (f *Finder) sigstoreDigest(ctx context.Context, url string) (string, error) {
	data, err := f.get(ctx, url, 1<<20)
	if err != nil {
		return "", err
	}
	var b struct {
		MessageSignature struct {
			MessageDigest struct {
				Algorithm string `json:"algorithm"`
				Digest    string `json:"digest"`
			} `json:"messageDigest"`
		} `json:"messageSignature"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return "", err
	}
	if b.MessageSignature.MessageDigest.Algorithm != "SHA2_256" {
		return "", fmt.Errorf("sigstore bundle digest is %q, not SHA2_256", b.MessageSignature.MessageDigest.Algorithm)
	}
	raw, err := base64.StdEncoding.DecodeString(b.MessageSignature.MessageDigest.Digest)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("sigstore bundle digest is not a sha256")
	}
	return hex.EncodeToString(raw), nil
}

func (f *Finder) exists(ctx context.Context, url string) (bool, error) {
	return httpget.Exists(ctx, f.client(), f.rewrite(url))
}

func (f *Finder) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	return httpget.Get(ctx, f.client(), f.rewrite(url), limit)
}

func (f *Finder) rewrite(url string) string {
	if f.Rewrite == nil {
		return url
	}
	return f.Rewrite(url)
}

// Newer reports whether version a is a later patch than b (same series).
func Newer(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x > y
		}
	}
	return len(pa) > len(pb)
}
