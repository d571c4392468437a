package source

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source/sourcetest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/httpget"

	"github.com/agentforge/agentforge/images"
)

// origin is a test HTTP server holding files by path and counting requests.
type origin struct {
	*httptest.Server
	files map[string][]byte
	hits  atomic.Int64
}

func newOrigin(t *testing.T, files map[string][]byte) *origin {
	o := &origin{files: files}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		data, ok := o.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(o.Close)
	return o
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha1Hex(b []byte) string   { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }

func TestFetch_Checks(t *testing.T) {
	payload := []byte("Python-3.11.x source tarball stand-in\n")
	other := []byte("something else entirely\n")
	signer, fpr, signerPub := sourcetest.Key(t, "release-manager")
	intruder, intruderFpr, intruderPub := sourcetest.Key(t, "intruder")

	o := newOrigin(t, map[string][]byte{
		"/py.tgz":                          payload,
		"/py.tgz.asc":                      sourcetest.Sign(t, signer, payload),
		"/py.tgz.bad.asc":                  sourcetest.Sign(t, intruder, payload),
		"/py.tgz.other.asc":                sourcetest.Sign(t, signer, other),
		"/agent.jar":                       payload,
		"/agent.jar.sha1":                  []byte(sha1Hex(payload) + "  agent.jar\n"),
		"/agent.jar.wrong.sha1":            []byte(sha1Hex(other) + "\n"),
		"/vks/v1/by-fingerprint/" + fpr:    signerPub,
		"/vks/v1/by-fingerprint/INTRUDERS": intruderPub,
	})
	u := o.URL
	sig := func(url string, key []byte) *images.Signature {
		return &images.Signature{URL: url, Fingerprint: fpr, Key: key}
	}
	cases := []struct {
		name      string
		src       images.Source
		wantCheck string // substring of Checks, when it succeeds
		wantErr   string // substring of the *errs.IntegrityError, when it fails
	}{
		{"sha256 ok", images.Source{URL: u + "/py.tgz", SHA256: sha256Hex(payload)}, "sha256", ""},
		{"sha256 mismatch", images.Source{URL: u + "/py.tgz", SHA256: sha256Hex(other)}, "", "sha256 mismatch: expected " + sha256Hex(other) + ", got " + sha256Hex(payload)},
		{"published sha1 ok", images.Source{URL: u + "/agent.jar", Checksum: &images.Checksum{URL: u + "/agent.jar.sha1", Algorithm: "sha1"}}, "sha1 (published checksum)", ""},
		{"published sha1 mismatch", images.Source{URL: u + "/agent.jar", Checksum: &images.Checksum{URL: u + "/agent.jar.wrong.sha1", Algorithm: "sha1"}}, "", "sha1 (published at " + u + "/agent.jar.wrong.sha1) mismatch"},
		{"signature ok, key from keyserver", images.Source{URL: u + "/py.tgz", SHA256: sha256Hex(payload), Signature: sig(u+"/py.tgz.asc", nil)}, "openpgp " + fpr, ""},
		{"signature ok, key in definition", images.Source{URL: u + "/py.tgz", SHA256: sha256Hex(payload), Signature: sig(u+"/py.tgz.asc", signerPub)}, "openpgp " + fpr, ""},
		{"signature by another key", images.Source{URL: u + "/py.tgz", SHA256: sha256Hex(payload), Signature: sig(u+"/py.tgz.bad.asc", signerPub)}, "", "signature " + u + "/py.tgz.bad.asc: signature mismatch"},
		{"signature of other content", images.Source{URL: u + "/py.tgz", SHA256: sha256Hex(payload), Signature: sig(u+"/py.tgz.other.asc", signerPub)}, "", "signature mismatch"},
		{"key with the wrong fingerprint", images.Source{URL: u + "/py.tgz", SHA256: sha256Hex(payload), Signature: sig(u+"/py.tgz.asc", intruderPub)}, "", "fingerprint mismatch: expected " + fpr + ", got " + intruderFpr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.src.Name = "src"
			f := &Fetcher{CacheDir: t.TempDir(), KeyServer: u}
			got, err := f.Fetch(context.Background(), tc.src)
			if tc.wantErr != "" {
				var ie *errs.IntegrityError
				if !errors.As(err, &ie) {
					t.Fatalf("want an *errs.IntegrityError containing %q, got %v", tc.wantErr, err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q\nwant it to contain %q", err, tc.wantErr)
				}
				if got.Path != "" {
					t.Errorf("a failed source must not be handed out (path %q)", got.Path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(got.Checks, ";"), tc.wantCheck) {
				t.Errorf("checks %v, want %q", got.Checks, tc.wantCheck)
			}
			data, err := os.ReadFile(got.Path)
			if err != nil || !bytes.Equal(data, payload) {
				t.Errorf("cached file: %v, %q", err, data)
			}
			if got.SHA256 != sha256Hex(payload) {
				t.Errorf("sha256 %s", got.SHA256)
			}
			if want := map[bool]string{true: fpr}[tc.src.Signature != nil]; got.SignedBy != want {
				t.Errorf("signed by %q, want %q", got.SignedBy, want)
			}
		})
	}
}

func TestFetch_CacheAndMirror(t *testing.T) {
	payload := []byte("tarball")
	mirror := newOrigin(t, map[string][]byte{"/python/3.11.2/Python-3.11.2.tgz": payload})
	f := &Fetcher{
		CacheDir: t.TempDir(),
		Mirrors:  []remote.Mirror{{From: "https://www.python.org/ftp/python/", To: mirror.URL + "/python/"}},
	}
	src := images.Source{Name: "python", URL: "https://www.python.org/ftp/python/3.11.2/Python-3.11.2.tgz", SHA256: sha256Hex(payload)}
	first, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || first.From != mirror.URL+"/python/3.11.2/Python-3.11.2.tgz" {
		t.Errorf("first fetch: cached=%t from=%s", first.Cached, first.From)
	}
	second, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || mirror.hits.Load() != 1 {
		t.Errorf("second fetch: cached=%t, %d requests (want 1)", second.Cached, mirror.hits.Load())
	}

	// A cached file that changed on disk is refused, removed, and fetched
	// again on the next run.
	if err := os.WriteFile(second.Path, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background(), src); !errors.Is(err, errs.ErrIntegrity) {
		t.Fatalf("tampered cache: want an integrity error, got %v", err)
	}
	if third, err := f.Fetch(context.Background(), src); err != nil || third.Cached {
		t.Fatalf("after a bad cache entry: cached=%t err=%v", third.Cached, err)
	}
}

func TestFetch_SkipSignatureStillChecksSHA256(t *testing.T) {
	payload := []byte("tarball")
	o := newOrigin(t, map[string][]byte{"/x.tgz": payload})
	f := &Fetcher{CacheDir: t.TempDir(), SkipSignature: map[string]bool{"python": true}}
	src := images.Source{Name: "python", URL: o.URL + "/x.tgz", SHA256: sha256Hex(payload),
		Signature: &images.Signature{URL: o.URL + "/missing.asc", Fingerprint: strings.Repeat("A", 40)}}
	got, err := f.Fetch(context.Background(), src)
	if err != nil || !got.SignatureSkipped || got.SignedBy != "" || got.Checks[0] != "sha256" {
		t.Fatalf("got %+v, %v", got, err)
	}
	src.SHA256 = sha256Hex([]byte("other"))
	if _, err := f.Fetch(context.Background(), src); !errors.Is(err, errs.ErrIntegrity) {
		t.Fatalf("skipping the signature must not skip the sha256: %v", err)
	}
}

func TestFetch_NetworkErrorIsNotIntegrity(t *testing.T) {
	o := newOrigin(t, nil)
	f := &Fetcher{CacheDir: t.TempDir()}
	_, err := f.Fetch(context.Background(), images.Source{Name: "x", URL: o.URL + "/missing", SHA256: strings.Repeat("0", 64)})
	if err == nil || errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("want a plain 404 error, got %v", err)
	}
}

// A source URL (or a mirror's) that does not parse is reported without the
// credentials it carries: net/url's parse error quotes the URL whole.
func TestFetch_UnparsableURLHidesCredentials(t *testing.T) {
	f := &Fetcher{CacheDir: t.TempDir()}
	for _, u := range []string{"http://user:s3cret%zz@127.0.0.1:1/x.tgz", "http://user:s3cret@127.0.0.1:1/%zz.tgz", "http://user:s3cret/x@127.0.0.1:1/x.tgz"} {
		_, err := f.Fetch(context.Background(), images.Source{Name: "x", URL: u, SHA256: strings.Repeat("0", 64)})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Fetch(%q): %v", u, err)
		}
	}
}

// A local file:// source is read again on every build: a changed file is
// never served from the cache.
func TestFetch_LocalFileChangedIsNotStale(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tool")
	os.WriteFile(file, []byte("one"), 0o644)
	f := &Fetcher{CacheDir: t.TempDir()}
	src := images.Source{Name: "tool", URL: "file://" + file, Dest: "tool"}
	first, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, []byte("two"), 0o644)
	second, err := f.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if first.SHA256 == second.SHA256 {
		t.Fatalf("the changed file was served from the cache (%s)", second.SHA256)
	}
	if b, _ := os.ReadFile(second.Path); string(b) != "two" {
		t.Fatalf("served %q", b)
	}
}

// A release's SHA256SUMS lists several files ("<hex>  name" a line, as
// sha256sum writes it): each source is checked against the line naming
// it, never against another file's line, and a list that does not name it
// once is refused.
func TestFetch_ChecksumList(t *testing.T) {
	amd, arm := []byte("agentforge for amd64\n"), []byte("agentforge for arm64\n")
	list := sha256Hex(amd) + "  agentforge-linux-amd64\n" + sha256Hex(arm) + "  agentforge-linux-arm64\n"
	o := newOrigin(t, map[string][]byte{
		"/v1/agentforge-linux-amd64": amd,
		"/v1/agentforge-linux-arm64": arm,
		"/v1/SHA256SUMS":             []byte(list),
		"/v1/binary.sums":            []byte(sha256Hex(amd) + " *agentforge-linux-amd64\n" + sha256Hex(arm) + " *./agentforge-linux-arm64\n"),
		"/v1/swapped.sums":           []byte(sha256Hex(arm) + "  agentforge-linux-amd64\n" + sha256Hex(amd) + "  agentforge-linux-arm64\n"),
		"/v1/missing.sums":           []byte(sha256Hex(amd) + "  agentforge-linux-amd64\n" + sha256Hex(amd) + "  agentforge-darwin-arm64\n"),
		"/v1/twice.sums":             []byte(list + sha256Hex(amd) + "  agentforge-linux-arm64\n"),
		"/v1/malformed.sums":         []byte(list + "not a checksum line\n"),
	})
	for _, tc := range []struct {
		name, file, sums string
		wantErr          string // "" for success; "mismatch" an integrity error
	}{
		{"second line", "agentforge-linux-arm64", "SHA256SUMS", ""},
		{"first line", "agentforge-linux-amd64", "SHA256SUMS", ""},
		{"binary mode and ./", "agentforge-linux-arm64", "binary.sums", ""},
		{"lines naming the other file", "agentforge-linux-arm64", "swapped.sums", "sha256 (published at " + o.URL + "/v1/swapped.sums) mismatch"},
		{"not listed", "agentforge-linux-arm64", "missing.sums", "no line for agentforge-linux-arm64 among its 2 entries"},
		{"listed twice, differently", "agentforge-linux-arm64", "twice.sums", "agentforge-linux-arm64 is listed twice"},
		{"malformed line", "agentforge-linux-amd64", "malformed.sums", `line 3 is not "<sha256> <name>"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Fetcher{CacheDir: t.TempDir()}
			got, err := f.Fetch(context.Background(), images.Source{Name: "bin", URL: o.URL + "/v1/" + tc.file,
				Checksum: &images.Checksum{URL: o.URL + "/v1/" + tc.sums, Algorithm: "sha256"}})
			if tc.wantErr == "" {
				if err != nil || !strings.Contains(strings.Join(got.Checks, ";"), "sha256 (published checksum)") {
					t.Fatalf("Fetch: %v, checks %v", err, got.Checks)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Fetch: %v, want an error containing %q", err, tc.wantErr)
			}
			if strings.Contains(tc.wantErr, "mismatch") != errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("%v: integrity error %t", err, errors.Is(err, errs.ErrIntegrity))
			}
			if got.Path != "" {
				t.Errorf("a failed source was handed out: %s", got.Path)
			}
		})
	}
}

// A redirect from https to plain http is refused for the file and its
// published checksum alike (a network attacker could swap both); https to
// https is followed, and so is http to http (a mirror the user chose).
func TestFetch_RedirectLeavingHTTPSIsRefused(t *testing.T) {
	jar := []byte("jar")
	files := map[string][]byte{"/x.jar": jar, "/x.jar.sha1": []byte(sha1Hex(jar))}
	serve := func(w http.ResponseWriter, r *http.Request) {
		if data, ok := files[r.URL.Path]; ok {
			w.Write(data)
			return
		}
		http.NotFound(w, r)
	}
	plain := httptest.NewServer(http.HandlerFunc(serve))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(serve))
	defer secure.Close()
	redirectTo := func(target string) *httptest.Server {
		return httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+r.URL.Path, http.StatusFound)
		}))
	}
	for _, tc := range []struct {
		name    string
		target  string
		tls     bool
		refused bool
	}{
		{"https to http", plain.URL, true, true},
		{"https to https", secure.URL, true, false},
		{"http to http", plain.URL, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := redirectTo(tc.target)
			if tc.tls {
				from.StartTLS()
			} else {
				from.Start()
			}
			defer from.Close()
			f := &Fetcher{CacheDir: t.TempDir(), Client: secure.Client()}
			got, err := f.Fetch(context.Background(), images.Source{Name: "remoting", URL: from.URL + "/x.jar",
				Checksum: &images.Checksum{URL: from.URL + "/x.jar.sha1", Algorithm: "sha1"}})
			if tc.refused {
				var ie *errs.IntegrityError
				if !errors.Is(err, httpget.ErrInsecureRedirect) || errors.As(err, &ie) {
					t.Fatalf("error %v, want %v (not an integrity error)", err, httpget.ErrInsecureRedirect)
				}
				return
			}
			if err != nil || len(got.Checks) == 0 {
				t.Fatalf("%+v %v", got, err)
			}
		})
	}
}

// A signing key kept from an earlier run that no longer verifies (the
// release manager added a signing subkey, or extended the key, since) is
// fetched again from the keyserver, whose copy of the same pinned key
// decides and is kept; a signature no copy verifies still fails as an
// integrity error. Before, the kept copy was used for ever: exit 3 until
// the cache was cleared by hand.
func TestFetch_StaleKeptKeyIsFetchedAgain(t *testing.T) {
	payload := []byte("tarball")
	e, fpr, before := sourcetest.Key(t, "release manager")
	if err := e.AddSigningSubkey(nil); err != nil {
		t.Fatal(err)
	}
	var now bytes.Buffer
	w, _ := armor.Encode(&now, openpgp.PublicKeyType, nil)
	e.Serialize(w)
	w.Close()
	sig := sourcetest.Sign(t, e, payload) // by the new subkey
	other, _, _ := sourcetest.Key(t, "someone else")
	for _, tc := range []struct {
		name      string
		sig       []byte
		keyserver []byte
		wantErr   bool
	}{
		{name: "the keyserver has the new subkey", sig: sig, keyserver: now.Bytes()},
		{name: "the keyserver has the old copy too", sig: sig, keyserver: before, wantErr: true},
		{name: "a signature by another key", sig: sourcetest.Sign(t, other, payload), keyserver: now.Bytes(), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, kept, err := fetchWithKeptKey(t, payload, tc.sig, fpr, before, tc.keyserver)
			if tc.wantErr {
				if !errors.Is(err, errs.ErrIntegrity) {
					t.Fatalf("got %v, want an integrity error", err)
				}
				return
			}
			if err != nil || got.SignedBy != fpr {
				t.Fatalf("got %+v, %v; want it signed by %s", got, err, fpr)
			}
			if keptNow, _ := os.ReadFile(kept); bytes.Equal(keptNow, before) {
				t.Error("the kept key is still the old copy")
			}
		})
	}
}

// fetchWithKeptKey fetches payload, signed with sig, from a python.org
// stand-in whose keyserver serves keyserver for fpr, into a cache that
// keeps kept as fpr's key; it returns the kept key's path.
func fetchWithKeptKey(t *testing.T, payload, sig []byte, fpr string, kept, keyserver []byte) (Fetched, string, error) {
	t.Helper()
	o := newOrigin(t, map[string][]byte{"/py.tgz": payload, "/py.tgz.asc": sig, "/vks/v1/by-fingerprint/" + fpr: keyserver})
	cache := t.TempDir()
	path := filepath.Join(cache, "keys", fpr+".asc")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, kept, 0o644); err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{CacheDir: cache, KeyServer: o.URL}
	got, err := f.Fetch(context.Background(), images.Source{Name: "python", URL: o.URL + "/py.tgz", SHA256: sha256Hex(payload),
		Signature: &images.Signature{URL: o.URL + "/py.tgz.asc", Fingerprint: fpr}})
	return got, path, err
}

// A revocation in the kept copy of a key stands: a keyserver's copy
// without it (an older one, or one stripped on the way, as anyone can
// strip a signature packet) does not bring the revoked subkey back, and
// the copy kept afterwards still has the revocation.
func TestFetch_KeptRevocationStands(t *testing.T) {
	payload := []byte("tarball")
	e, fpr, _ := sourcetest.Key(t, "release manager")
	if err := e.AddSigningSubkey(nil); err != nil {
		t.Fatal(err)
	}
	armored := func() []byte {
		var b bytes.Buffer
		w, _ := armor.Encode(&b, openpgp.PublicKeyType, nil)
		e.Serialize(w)
		w.Close()
		return b.Bytes()
	}
	stripped := armored()
	sig := sourcetest.Sign(t, e, payload) // by the subkey, before it was revoked
	if err := e.RevokeSubkey(&e.Subkeys[len(e.Subkeys)-1], packet.KeyCompromised, "stolen", nil); err != nil {
		t.Fatal(err)
	}
	revoked := armored()
	_, kept, err := fetchWithKeptKey(t, payload, sig, fpr, revoked, stripped)
	if !errors.Is(err, errs.ErrIntegrity) {
		t.Fatalf("got %v, want an integrity error: the subkey is revoked", err)
	}
	data, _ := os.ReadFile(kept)
	keyring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil || len(keyring) != 1 {
		t.Fatalf("kept key: %v", err)
	}
	if sub := keyring[0].Subkeys; len(sub) == 0 || len(sub[len(sub)-1].Revocations) == 0 {
		t.Error("the kept key lost the subkey's revocation")
	}
}

// Runs that share a cache folder (two builds on one machine, say one per
// platform) fetch the same source at the same time: each must get it,
// whatever the others do to the cache's index at that moment.
func TestFetch_ConcurrentRunsShareTheCache(t *testing.T) {
	payload := []byte("remoting jar stand-in\n")
	o := newOrigin(t, map[string][]byte{"/remoting.jar": payload, "/remoting.jar.sha1": []byte(sha1Hex(payload))})
	cache := t.TempDir()
	src := images.Source{Name: "remoting", URL: o.URL + "/remoting.jar", Checksum: &images.Checksum{URL: o.URL + "/remoting.jar.sha1", Algorithm: "sha1"}}
	const runs = 16
	errc := make(chan error, runs)
	for range runs {
		go func() {
			f := &Fetcher{CacheDir: cache}
			var err error
			for range 10 {
				if _, err = f.Fetch(context.Background(), src); err != nil {
					break
				}
			}
			errc <- err
		}()
	}
	for range runs {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
