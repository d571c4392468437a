package cpython

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images/errs"
)

func TestNewer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"3.11.10", "3.11.9", true},
		{"3.11.9", "3.11.10", false},
		{"3.11.9", "3.11.9", false},
		{"3.12.0", "3.11.16", true},
	} {
		if got := Newer(tc.a, tc.b); got != tc.want {
			t.Errorf("Newer(%s, %s) = %t", tc.a, tc.b, got)
		}
	}
}

// Latest takes the sha256 from the release's sigstore bundle; a missing
// bundle (404) leaves it empty, but a bundle python.org failed to serve
// (503) or that does not state a sha256 is an error, not "no bundle"
// (which would tell the user to check the sha256 themselves).
func TestFinder_LatestSigstore(t *testing.T) {
	sum := sha256.Sum256([]byte("tarball"))
	good, _ := json.Marshal(map[string]any{"messageSignature": map[string]any{"messageDigest": map[string]string{
		"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(sum[:])}}})
	for _, tc := range []struct {
		name   string
		status int
		bundle []byte
		sha256 string
		err    string
	}{
		{name: "bundle", status: http.StatusOK, bundle: good, sha256: hex.EncodeToString(sum[:])},
		{name: "no bundle", status: http.StatusNotFound},
		{name: "unavailable", status: http.StatusServiceUnavailable, err: "503"},
		{name: "another algorithm", status: http.StatusOK, bundle: []byte(`{"messageSignature":{"messageDigest":{"algorithm":"SHA2_384","digest":"AA=="}}}`), err: "SHA2_384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/ftp/python/":
					io.WriteString(w, `<a href="3.11.9/">3.11.9/</a> <a href="3.11.16/">3.11.16/</a>`)
				case "/ftp/python/3.11.16/Python-3.11.16.tar.xz":
				case "/ftp/python/3.11.16/Python-3.11.16.tar.xz.sigstore":
					w.WriteHeader(tc.status)
					w.Write(tc.bundle)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			r, err := (&Finder{Base: srv.URL}).Latest(context.Background(), "3.11")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Latest: %+v, %v; want an error saying %s", r, err, tc.err)
				}
				return
			}
			if err != nil || r.Version != "3.11.16" || r.SHA256 != tc.sha256 {
				t.Fatalf("Latest: %+v, %v; want 3.11.16 with sha256 %q", r, err, tc.sha256)
			}
		})
	}
}

// A series or python.org base that cannot be right is the caller's input
// at fault (errs.ErrInput: exit 2), found before anything is fetched,
// and a base's credentials are not repeated in the error.
func TestFinder_LatestRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, base, series string
	}{
		{name: "series", series: "3"},
		{name: "series 2.7", series: "2.7"},
		{name: "base with a bad escape", base: "https://alice:S3cr3t%zz@python.example"},
		{name: "base not a web server", base: "file:///srv/python.org"},
		{name: "base with no host", base: "https:///ftp"},
		{name: "base with no scheme", base: "python.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			series := tc.series
			if series == "" {
				series = "3.11"
			}
			_, err := (&Finder{Base: tc.base, Client: &http.Client{Transport: failTransport{t}}}).Latest(context.Background(), series)
			if !errors.Is(err, errs.ErrInput) {
				t.Fatalf("got %v, want an input error", err)
			}
			if strings.Contains(err.Error(), "S3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// failTransport fails the test on any request.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request %s %s sent", r.Method, r.URL.Redacted())
	return nil, errors.New("no request expected")
}
