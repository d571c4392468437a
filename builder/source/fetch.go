package source

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/fileedit"
	"github.com/agentforge/agentforge/images/httpget"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/sirupsen/logrus"
)

// DefaultKeyServer is where signing keys are fetched by fingerprint (the VKS
// API of keys.openpgp.org) when a definition does not carry the key itself.
const DefaultKeyServer = "https://keys.openpgp.org"

// Fetcher downloads a definition's sources into a content-addressed cache and
// checks each one before handing it out.
type Fetcher struct {
	// CacheDir holds blobs/sha256/<hex> and the small index files.
	CacheDir string
	// Client is the HTTP client; nil means a client with a 10-minute timeout.
	Client *http.Client
	// Mirrors rewrite source, signature, checksum and keyserver URLs.
	Mirrors []remote.Mirror
	// KeyServer is the VKS base URL; empty means DefaultKeyServer.
	KeyServer string
	// SkipSignature names sources whose OpenPGP check is skipped (logged as a
	// warning and reported in Fetched). Their sha256 is still checked.
	SkipSignature map[string]bool
	// Log receives progress; nil discards it.
	Log logrus.FieldLogger
	// Progress shows downloads as they go; nil means a line on Log every
	// 10 seconds of a long one.
	Progress progress.Reporter
}

// Base is the image a build started from: the reference as the definition
// names it and the digest that was pulled.
type Base struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// Fetched describes a source that is ready to use.
type Fetched struct {
	Name string `json:"name"`
	// URL is the definition's URL; From is where it was actually read (after mirrors).
	URL  string `json:"url"`
	From string `json:"from"`
	// Path is the checked file in the cache.
	Path   string `json:"-"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Checks lists what was verified: "sha256", "sha1 (published checksum)", "openpgp A035…".
	Checks []string `json:"checks"`
	Cached bool     `json:"cached"`
	// SignedBy is the fingerprint of the OpenPGP key whose signature of
	// the file was verified; "" when none was.
	SignedBy string `json:"signedBy,omitempty"`
	// SignatureSkipped is true when the definition names a signature but the
	// caller asked to skip it.
	SignatureSkipped bool `json:"signatureSkipped,omitempty"`
}

// cacheIndex records what a URL resolved to, so that sources pinned only by
// a published checksum can be reused offline and are still re-checked.
type cacheIndex struct {
	URL       string `json:"url"`
	SHA256    string `json:"sha256"`
	Algorithm string `json:"algorithm,omitempty"`
	Checksum  string `json:"checksum,omitempty"`
}

func (f *Fetcher) log() logrus.FieldLogger {
	if f.Log == nil {
		return oci.Discard
	}
	return f.Log
}

// client is the caller's client, or one with a download's timeout; either
// refuses a redirect from https to plain http (httpget.Secure).
func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return httpget.Secure(f.Client)
	}
	return httpget.Secure(&http.Client{Timeout: 10 * time.Minute})
}

// Fetch makes src available in the cache and checks it: its sha256 when the
// definition pins one, the published checksum when it names one, and the
// OpenPGP signature when it names one. A mismatch is an *errs.IntegrityError.
func (f *Fetcher) Fetch(ctx context.Context, src images.Source) (Fetched, error) {
	from := remote.Rewrite(f.Mirrors, src.URL)
	out := Fetched{Name: src.Name, URL: httpget.RedactURL(src.URL), From: httpget.RedactURL(from)}
	what := fmt.Sprintf("source %q (%s)", src.Name, out.From)
	log := f.log().WithField("source", src.Name)

	idxPath := filepath.Join(f.CacheDir, "urls", hashString(from)+".json")
	var idx cacheIndex
	if data, err := os.ReadFile(idxPath); err == nil {
		_ = json.Unmarshal(data, &idx)
	}
	want := src.SHA256
	local := strings.HasPrefix(from, "file://")
	if want == "" && !local {
		// Learnt from an earlier download checked by its published
		// checksum. A local file is read again every time: it may have
		// changed since.
		want = idx.SHA256
	}
	blob := ""
	if want != "" {
		if p := f.blobPath(want); fileExists(p) {
			blob, out.Cached = p, true
		}
	}
	if blob == "" {
		p, err := f.download(ctx, from, log)
		if err != nil {
			return out, fmt.Errorf("%s: %w", what, err)
		}
		blob = p
	}

	// Everything below re-reads the file: a cached blob is checked as
	// strictly as a fresh download.
	sums, size, err := hashFile(blob, "sha256", checksumAlgorithm(src))
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	out.SHA256, out.Size = sums["sha256"], size
	if src.SHA256 != "" {
		if out.SHA256 != src.SHA256 {
			f.discard(blob, idxPath)
			return out, &errs.IntegrityError{What: what, Check: "sha256", Expected: src.SHA256, Actual: out.SHA256}
		}
		out.Checks = append(out.Checks, "sha256")
	}
	if src.Checksum != nil {
		published, err := f.publishedChecksum(ctx, src.Checksum, urlFile(src.URL), idx, log)
		if err != nil {
			return out, fmt.Errorf("%s: checksum %s: %w", what, src.Checksum.URL, err)
		}
		if got := sums[src.Checksum.Algorithm]; got != published {
			f.discard(blob, idxPath)
			return out, &errs.IntegrityError{What: what, Check: src.Checksum.Algorithm + " (published at " + httpget.RedactURL(remote.Rewrite(f.Mirrors, src.Checksum.URL)) + ")", Expected: published, Actual: got}
		}
		out.Checks = append(out.Checks, src.Checksum.Algorithm+" (published checksum)")
		idx = cacheIndex{URL: from, SHA256: out.SHA256, Algorithm: src.Checksum.Algorithm, Checksum: published}
	}
	if src.Signature != nil {
		if f.SkipSignature[src.Name] {
			log.Warnf("OpenPGP signature check SKIPPED for %s on request (key %s); only its checksum was checked", src.Name, src.Signature.Fingerprint)
			out.SignatureSkipped = true
		} else {
			if err := f.checkSignature(ctx, blob, src, log); err != nil {
				return out, fmt.Errorf("%s: %w", what, err)
			}
			out.Checks = append(out.Checks, "openpgp "+src.Signature.Fingerprint)
			out.SignedBy = src.Signature.Fingerprint
		}
	}
	if len(out.Checks) == 0 {
		if !local {
			// images.Load refuses such definitions; this guards library callers.
			return out, &errs.IntegrityError{What: what, Check: "nothing to check it against (no sha256, checksum or signature)"}
		}
		out.Checks = append(out.Checks, "local file (not downloaded)")
	}

	// Move a fresh download to its content address and remember the URL.
	final := f.blobPath(out.SHA256)
	if blob != final {
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return out, err
		}
		if err := os.Chmod(blob, 0o644); err != nil {
			return out, err
		}
		if err := os.Rename(blob, final); err != nil {
			return out, fmt.Errorf("%s: store in cache: %w", what, err)
		}
	}
	out.Path = final
	if idx.SHA256 == "" {
		idx = cacheIndex{URL: from, SHA256: out.SHA256}
	}
	if err := writeJSON(idxPath, idx); err != nil {
		return out, err
	}
	log.WithFields(logrus.Fields{"sha256": out.SHA256, "bytes": out.Size, "cached": out.Cached}).
		Infof("source %s ready: %s", src.Name, strings.Join(append([]string{}, out.Checks...), ", "))
	return out, nil
}

func checksumAlgorithm(src images.Source) string {
	if src.Checksum == nil {
		return ""
	}
	return src.Checksum.Algorithm
}

func (f *Fetcher) blobPath(sha string) string {
	return filepath.Join(f.CacheDir, "blobs", "sha256", sha)
}

// discard removes a cached file that failed its check, so that the next run
// downloads it again instead of failing forever on a corrupt cache.
func (f *Fetcher) discard(blob, idxPath string) {
	_ = os.Remove(blob)
	_ = os.Remove(idxPath)
}

// publishedChecksum fetches a checksum file and returns the hex value it
// gives for the file named file: a file of one entry ("<hex>" or "<hex>
// name", as Maven's .sha1) gives its value; a list of several ("<hex>
// name" a line, as sha256sum writes a release's SHA256SUMS; "*name" in
// binary mode) gives the value of the line naming file (by base name),
// which must be there once (or agree). Offline, the value recorded at the
// last successful check of the same URL is used.
func (f *Fetcher) publishedChecksum(ctx context.Context, c *images.Checksum, file string, idx cacheIndex, log logrus.FieldLogger) (string, error) {
	u := remote.Rewrite(f.Mirrors, c.URL)
	data, err := f.get(ctx, u, 1<<16)
	if err != nil {
		if idx.Checksum != "" && idx.Algorithm == c.Algorithm {
			log.Warnf("cannot fetch %s (%v); using the checksum recorded when it was last fetched", httpget.RedactURL(u), err)
			return idx.Checksum, nil
		}
		return "", err
	}
	size := map[string]int{"sha1": 40, "sha256": 64, "sha512": 128}[c.Algorithm]
	valid := func(v string) bool {
		_, err := hex.DecodeString(v)
		return err == nil && len(v) == size
	}
	var entries [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) > 0 {
			entries = append(entries, fields)
		}
	}
	switch len(entries) {
	case 0:
		return "", fmt.Errorf("empty checksum file")
	case 1:
		v := strings.ToLower(entries[0][0])
		if !valid(v) {
			return "", fmt.Errorf("not a %s checksum: %q", c.Algorithm, httpget.Truncate(string(data), 80))
		}
		return v, nil
	}
	found := ""
	for i, e := range entries {
		v := strings.ToLower(e[0])
		if !valid(v) || len(e) != 2 {
			return "", fmt.Errorf("line %d is not \"<%s> <name>\": %q", i+1, c.Algorithm, httpget.Truncate(strings.Join(e, " "), 80))
		}
		if path.Base(strings.TrimPrefix(e[1], "*")) != file {
			continue
		}
		if found != "" && found != v {
			return "", fmt.Errorf("%s is listed twice, with different checksums", file)
		}
		found = v
	}
	if found == "" {
		return "", fmt.Errorf("no line for %s among its %d entries", file, len(entries))
	}
	return found, nil
}

// urlFile is the file name at the end of a URL's path.
func urlFile(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return path.Base(u.Path)
	}
	return path.Base(rawURL)
}

// download writes url's content to a temporary file in the cache and
// returns its path. file:// URLs are read from the local disk.
func (f *Fetcher) download(ctx context.Context, rawURL string, log logrus.FieldLogger) (string, error) {
	if err := os.MkdirAll(filepath.Join(f.CacheDir, "tmp"), 0o755); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Join(f.CacheDir, "tmp"), "download-*")
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer tmp.Close()
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if p, ok := strings.CutPrefix(rawURL, "file://"); ok {
		in, err := os.Open(p)
		if err != nil {
			return fail(err)
		}
		defer in.Close()
		if _, err := io.Copy(tmp, in); err != nil {
			return fail(err)
		}
		return tmp.Name(), tmp.Close()
	}
	log.Infof("downloading %s", httpget.RedactURL(rawURL))
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		if attempt > 1 {
			delay := time.Duration(attempt-1) * 2 * time.Second
			log.Warnf("download %s failed (%v); retry %d/2 in %s", httpget.RedactURL(rawURL), lastErr, attempt-1, delay)
			select {
			case <-ctx.Done():
				return fail(ctx.Err())
			case <-time.After(delay):
			}
			if _, err := tmp.Seek(0, io.SeekStart); err != nil {
				return fail(err)
			}
			if err := tmp.Truncate(0); err != nil {
				return fail(err)
			}
		}
		var retry bool
		retry, lastErr = f.fetchTo(ctx, rawURL, tmp, log)
		if lastErr == nil {
			return tmp.Name(), tmp.Close()
		}
		if !retry {
			break
		}
	}
	return fail(lastErr)
}

// fetchTo GETs rawURL into w, logging progress every 10 seconds. It reports
// whether a failure is worth retrying (network errors, 408, 429, 5xx).
// A redirect from https to plain http is refused (httpget.Secure).
func (f *Fetcher) fetchTo(ctx context.Context, rawURL string, w io.Writer, log logrus.FieldLogger) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return false, fmt.Errorf("URL %s: %w", httpget.RedactURL(rawURL), httpget.ParseError(rawURL, err))
	}
	resp, err := f.client().Do(req)
	if err != nil {
		// A refused redirect is refused again: not worth a retry.
		return ctx.Err() == nil && !errors.Is(err, httpget.ErrInsecureRedirect), err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		retry := resp.StatusCode == 408 || resp.StatusCode == 429 || resp.StatusCode >= 500
		return retry, fmt.Errorf("GET %s: %s", httpget.RedactURL(rawURL), resp.Status)
	}
	rep := f.Progress
	if rep == nil {
		rep = &progress.Log{Printf: log.Infof}
	}
	bar := rep.Start("download "+httpget.RedactURL(rawURL), resp.ContentLength)
	_, err = io.Copy(progress.Writer(w, bar), resp.Body)
	bar.Done(err)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("GET %s: %w", httpget.RedactURL(rawURL), err)
	}
	return false, nil
}

// get fetches a small document (a checksum, a signature, a key).
func (f *Fetcher) get(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	return httpget.Get(ctx, f.Client, rawURL, limit)
}

// hashFile returns the hex digests of path for the named algorithms and its size.
func hashFile(path string, algorithms ...string) (map[string]string, int64, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	hashes := map[string]hash.Hash{}
	var writers []io.Writer
	for _, a := range algorithms {
		var h hash.Hash
		switch a {
		case "":
			continue
		case "sha1":
			h = sha1.New()
		case "sha256":
			h = sha256.New()
		case "sha512":
			h = sha512.New()
		default:
			return nil, 0, fmt.Errorf("unknown checksum algorithm %q", a)
		}
		hashes[a] = h
		writers = append(writers, h)
	}
	n, err := io.Copy(io.MultiWriter(writers...), in)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]string{}
	for a, h := range hashes {
		out[a] = hex.EncodeToString(h.Sum(nil))
	}
	return out, n, nil
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Runs sharing the cache write the same index at the same time.
	return fileedit.Replace(path, data, 0o644)
}
