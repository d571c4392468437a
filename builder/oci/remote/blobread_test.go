package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// brokenLink serves one blob the way a poor link or a flaky registry
// does: each GET is answered by serve, given the offset its Range asked
// for (0 without one). What it recorded: every GET's Range header.
type brokenLink struct {
	blob   []byte
	serve  func(w http.ResponseWriter, from int64, try int)
	mu     sync.Mutex
	ranges []string
}

func (l *brokenLink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v2/team/agent/blobs/") {
		http.NotFound(w, r)
		return
	}
	l.mu.Lock()
	l.ranges = append(l.ranges, r.Header.Get("Range"))
	try := len(l.ranges)
	l.mu.Unlock()
	var from int64
	if rg := r.Header.Get("Range"); rg != "" {
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		if err != nil || !strings.HasSuffix(rg, "-") {
			http.Error(w, "bad range "+rg, http.StatusBadRequest)
			return
		}
		from = n
	}
	l.serve(w, from, try)
}

func (l *brokenLink) gets() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ranges...)
}

// send answers with the blob from from on (206 when from > 0, as
// distribution does), and stops after max bytes by hanging up (max < 0:
// the whole rest).
func (l *brokenLink) send(w http.ResponseWriter, from int64, max int) {
	total := int64(len(l.blob))
	w.Header().Set("Content-Length", strconv.FormatInt(total-from, 10))
	if from > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, total-1, total))
		w.WriteHeader(http.StatusPartialContent)
	}
	rest := l.blob[from:]
	if max < 0 || max >= len(rest) {
		w.Write(rest)
		return
	}
	w.Write(rest[:max])
	hangUp(w)
}

// hangUp closes the connection under a handler mid-body: the client reads
// what was sent, then an unexpected EOF.
func hangUp(w http.ResponseWriter) {
	w.(http.Flusher).Flush()
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	buf.Flush()
	conn.Close()
}

// A blob read whose connection breaks goes on from where it stopped
// (Range: bytes=N-), checked against the answer's Content-Range, until it
// has every byte; a registry that ignores the Range is read from the start
// with what came skipped. It gives up, with the break's own error, when
// the break comes before resumeProgress bytes since the last resume, or
// the registry's answer to the Range is wrong. Modelled on c/image's
// docker/body_reader.go (v5.38.0), which resumes the same way.
func TestClient_OpenBlobReadsOnAfterABreak(t *testing.T) {
	const size = 3<<20 + 12345
	blob := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(blob)
	half := int64(size / 2)
	for _, tc := range []struct {
		name   string
		serve  func(l *brokenLink, w http.ResponseWriter, from int64, try int)
		ranges []string // the GETs' Range headers
		err    string   // in the read's error; "" for a whole read
	}{{
		name: "breaks once",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			if try == 1 {
				l.send(w, from, int(half))
				return
			}
			l.send(w, from, -1)
		},
		ranges: []string{"", fmt.Sprintf("bytes=%d-", half)},
	}, {
		name: "breaks every 1.2 MiB",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			l.send(w, from, 1200<<10)
		},
		ranges: []string{"", "bytes=1228800-", "bytes=2457600-"},
	}, {
		name: "ignores the range",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			if try == 1 {
				l.send(w, 0, int(half))
				return
			}
			l.send(w, 0, -1) // 200 and every byte
		},
		ranges: []string{"", fmt.Sprintf("bytes=%d-", half)},
	}, {
		name: "breaks early again",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			l.send(w, from, 100<<10)
		},
		ranges: []string{"", "bytes=102400-"},
		err:    "unexpected EOF",
	}, {
		name: "answers another start",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			if try == 1 {
				l.send(w, from, int(half))
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from-10, size-1, size))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(l.blob[from-10:])
		},
		ranges: []string{"", fmt.Sprintf("bytes=%d-", half)},
		err:    "another start",
	}, {
		name: "answers a range short of the end",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			if try == 1 {
				l.send(w, from, int(half))
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, size-2, size))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(l.blob[from : size-1])
		},
		ranges: []string{"", fmt.Sprintf("bytes=%d-", half)},
		err:    "not to the end",
	}, {
		name: "fails the range",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			if try == 1 {
				l.send(w, from, int(half))
				return
			}
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE"}]}`, http.StatusServiceUnavailable)
		},
		ranges: []string{"", fmt.Sprintf("bytes=%d-", half)},
		err:    "503",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			l := &brokenLink{blob: blob}
			l.serve = func(w http.ResponseWriter, from int64, try int) { tc.serve(l, w, from, try) }
			reg := httptest.NewTLSServer(l)
			defer reg.Close()
			c := (&fakeRegistry{srv: reg}).client(t, "u", "p", false)
			c.resumeWait = time.Millisecond
			rc, err := c.OpenBlob(context.Background(), digest.FromBytes(blob))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if tc.err == "" {
				if err != nil || !bytes.Equal(got, blob) {
					t.Errorf("read %d bytes (same: %v), %v; want all %d", len(got), bytes.Equal(got, blob), err, size)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("error %v; want the break's unexpected EOF, with %q", err, tc.err)
				}
				if !bytes.Equal(got, blob[:len(got)]) {
					t.Errorf("the %d bytes read before the error are not the blob's", len(got))
				}
			}
			if g := l.gets(); strings.Join(g, ",") != strings.Join(tc.ranges, ",") {
				t.Errorf("GETs with Range %q, want %q", g, tc.ranges)
			}
		})
	}
}

// A read that stalls goes on from where it stopped; one the caller
// cancels is not asked again.
func TestClient_OpenBlobReadsOnAfterAStallNotACancel(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	release := make(chan struct{})
	l := &brokenLink{blob: blob}
	l.serve = func(w http.ResponseWriter, from int64, try int) {
		if try == 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
			w.Write(blob[:1000])
			w.(http.Flusher).Flush()
			<-release
			return
		}
		l.send(w, from, -1)
	}
	reg := httptest.NewTLSServer(l)
	defer reg.Close()
	defer close(release) // before Close, which waits for the handlers
	c := (&fakeRegistry{srv: reg}).client(t, "u", "p", false)
	c.blobIdle, c.resumeWait = 200*time.Millisecond, time.Millisecond
	rc, err := c.OpenBlob(context.Background(), digest.FromBytes(blob))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, blob) {
		t.Errorf("read %d bytes, %v; want the whole blob after the stall", len(got), err)
	}
	if g := l.gets(); strings.Join(g, ",") != ",bytes=1000-" {
		t.Errorf("GETs with Range %q, want a second from byte 1000", g)
	}

	l.mu.Lock()
	l.ranges = nil
	l.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	rc, err = c.OpenBlob(ctx, digest.FromBytes(append(blob, 'x')))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v, want context.Canceled", err)
	}
	if g := l.gets(); len(g) != 1 {
		t.Errorf("cancelled read sent %d GETs (%q), want 1", len(g), g)
	}
}

func TestCheckContentRange(t *testing.T) {
	for _, tc := range []struct {
		h    []string
		from int64
		ok   bool
	}{
		{[]string{"bytes 100-199/200"}, 100, true},
		{[]string{"bytes 100-199/*"}, 100, true},
		{[]string{"bytes 99-199/200"}, 100, false},
		{[]string{"bytes 100-198/200"}, 100, false},
		{[]string{"bytes 100-199/300"}, 100, false},
		{[]string{"bytes 100-99/100"}, 100, false},
		{[]string{"bytes +100-199/200"}, 100, false},
		{[]string{"bytes 100--199/200"}, 100, false},
		{[]string{"items 100-199/200"}, 100, false},
		{[]string{"bytes 100-199"}, 100, false},
		{[]string{"bytes 100-199/200", "bytes 100-199/200"}, 100, false},
		{nil, 100, false},
	} {
		if err := checkContentRange(tc.h, tc.from); (err == nil) != tc.ok {
			t.Errorf("checkContentRange(%q, %d) = %v, want ok %v", tc.h, tc.from, err, tc.ok)
		}
	}
}
