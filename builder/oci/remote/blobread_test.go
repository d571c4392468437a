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
	max    int // GETs answered; those after fail the test (0: no bound)
	t      *testing.T
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
	if l.max > 0 && try > l.max {
		l.t.Errorf("GET %d (Range %q): more than the %d expected", try, r.Header.Get("Range"), l.max)
		http.Error(w, "too many", http.StatusInternalServerError)
		return
	}
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
		partial(w, from, total-1, total)
	}
	rest := l.blob[from:]
	if max < 0 || max >= len(rest) {
		w.Write(rest)
		return
	}
	w.Write(rest[:max])
	hangUp(w)
}

// partial writes the head of a 206 answer for bytes first to last of
// total.
func partial(w http.ResponseWriter, first, last, total int64) {
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, total))
	w.WriteHeader(http.StatusPartialContent)
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

// afterABreak is a serve that breaks the first GET half way through the
// blob, and answers the next ones with answer.
func afterABreak(answer func(l *brokenLink, w http.ResponseWriter, from int64)) func(*brokenLink, http.ResponseWriter, int64, int) {
	return func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
		if try == 1 {
			l.send(w, from, len(l.blob)/2)
			return
		}
		answer(l, w, from)
	}
}

// A blob read whose connection breaks goes on from where it stopped
// (Range: bytes=N-), checked against the answer's Content-Range, until it
// has every byte; a registry that ignores the Range is read from the start
// with what came skipped, once; a 416 "bytes */N" at byte N ends a read
// that broke after its last byte. It gives up, with the break's own
// error, when the break comes before resumeProgress bytes since the last
// resume, or the registry's answer to the Range is wrong (another start,
// short of the end, a body shorter than its Content-Range). Modelled on
// c/image's docker/body_reader.go (v5.38.0), which resumes the same way
// (and fails where the Range is ignored).
func TestClient_OpenBlobReadsOnAfterABreak(t *testing.T) {
	const size = 3<<20 + 12345
	blob := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(blob)
	half := int64(size / 2)
	resumedAtHalf := []string{"", fmt.Sprintf("bytes=%d-", half)} // the GETs of a read broken half way, then resumed
	for _, tc := range []struct {
		name    string
		serve   func(l *brokenLink, w http.ResponseWriter, from int64, try int)
		ranges  []string // the GETs' Range headers
		openErr string   // in OpenBlob's error
		err     string   // in the read's error; "" for a whole read
		status  int      // the error's StatusCode (0: none); temporary unless a 4xx
	}{{
		name: "breaks once",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			l.send(w, from, -1)
		}),
		ranges: resumedAtHalf,
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
		ranges: resumedAtHalf,
	}, {
		name: "ignores the range twice",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			l.send(w, 0, int(from)+1100<<10) // 200, and breaks 1.1 MiB past from
		},
		ranges: []string{"", "bytes=1126400-", "bytes=2252800-"},
		err:    "ignores Range: bytes=2252800- again",
	}, {
		name: "breaks after the last byte",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			if try == 1 {
				w.Write(l.blob) // chunked: no length, and no last chunk
				hangUp(w)
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		},
		ranges: []string{"", fmt.Sprintf("bytes=%d-", size)},
	}, {
		name: "answers 206 to a plain GET",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", size-1, size))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(l.blob)
		},
		ranges:  []string{""},
		openErr: "206",
	}, {
		name: "sends less than its Content-Range",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			w.Header().Set("Content-Length", "10")
			partial(w, from, size-1, size)
			w.Write(l.blob[from : from+10])
		}),
		ranges: resumedAtHalf,
		err:    "the body is 10 bytes",
	}, {
		name: "ends its 206 early",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			// Chunked, and cleanly ended 6000 bytes on.
			partial(w, from, size-1, size)
			w.Write(l.blob[from : from+6000])
		}),
		ranges: resumedAtHalf,
		err:    "unexpected EOF",
	}, {
		name: "answers 416 at another end",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", from))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		}),
		ranges: resumedAtHalf,
		err:    "416",
		status: http.StatusRequestedRangeNotSatisfiable,
	}, {
		name: "ignores the range with another blob",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			w.Header().Set("Content-Length", strconv.Itoa(size+1))
			w.Write(append(l.blob, 'x'))
		}),
		ranges: resumedAtHalf,
		err:    fmt.Sprintf("the blob is %d bytes now, %d before", size+1, size),
	}, {
		name: "breaks early again",
		serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			l.send(w, from, 1000<<10) // just short of resumeProgress
		},
		ranges: []string{"", "bytes=1024000-"},
		err:    "unexpected EOF",
	}, {
		name: "answers another start",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			partial(w, from-10, size-1, size)
			w.Write(l.blob[from-10:])
		}),
		ranges: resumedAtHalf,
		err:    "another start",
	}, {
		name: "answers a range short of the end",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			partial(w, from, size-2, size)
			w.Write(l.blob[from : size-1])
		}),
		ranges: resumedAtHalf,
		err:    "not to the end",
	}, {
		name: "fails the range",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE"}]}`, http.StatusServiceUnavailable)
		}),
		ranges: resumedAtHalf,
		err:    "503",
		status: http.StatusServiceUnavailable,
	}, {
		name: "no longer has the blob",
		serve: afterABreak(func(l *brokenLink, w http.ResponseWriter, from int64) {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
		}),
		ranges: resumedAtHalf,
		err:    "404",
		status: http.StatusNotFound,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			l := &brokenLink{blob: blob, max: len(tc.ranges), t: t}
			l.serve = func(w http.ResponseWriter, from int64, try int) { tc.serve(l, w, from, try) }
			reg := httptest.NewTLSServer(l)
			defer reg.Close()
			c := (&fakeRegistry{srv: reg}).client(t, "u", "p", false)
			c.resumeWait = time.Millisecond
			rc, err := c.OpenBlob(context.Background(), digest.FromBytes(blob))
			if tc.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.openErr) {
					t.Errorf("OpenBlob: %v, want an error with %q", err, tc.openErr)
				}
				return
			}
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
				if temp := tc.status == 0 || tc.status >= 500; StatusCode(err) != tc.status || Temporary(err) != temp {
					t.Errorf("error %v: status %d, temporary %v; want status %d, temporary %v", err, StatusCode(err), Temporary(err), tc.status, temp)
				}
			}
			if g := l.gets(); strings.Join(g, ",") != strings.Join(tc.ranges, ",") {
				t.Errorf("GETs with Range %q, want %q", g, tc.ranges)
			}
		})
	}
}

// OpenBlobFrom reads a blob from an offset: a 206 checked as a resumed
// read's, a 200 to a registry that ignores the Range with the bytes before
// the offset skipped, an empty body at the end (416 "bytes */N"), and a
// read that breaks goes on as OpenBlob's do. A negative offset is an input
// error before any request.
func TestClient_OpenBlobFrom(t *testing.T) {
	const size = 2<<20 + 17
	blob := make([]byte, size)
	rand.NewChaCha8([32]byte{9}).Read(blob)
	atEnd := func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
		if from == size {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		l.send(w, from, -1)
	}
	for _, tc := range []struct {
		name   string
		offset int64
		serve  func(l *brokenLink, w http.ResponseWriter, from int64, try int)
		ranges []string
		err    string
	}{
		{name: "from 0", offset: 0, serve: atEnd, ranges: []string{""}},
		{name: "from the middle", offset: 1<<20 + 3, serve: atEnd, ranges: []string{"bytes=1048579-"}},
		{name: "at the end", offset: size, serve: atEnd, ranges: []string{fmt.Sprintf("bytes=%d-", size)}},
		{name: "the Range ignored", offset: 100, serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			l.send(w, 0, -1)
		}, ranges: []string{"bytes=100-"}},
		{name: "breaks, then goes on", offset: 100, serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			if try == 1 {
				l.send(w, from, 1<<20)
				return
			}
			l.send(w, from, -1)
		}, ranges: []string{"bytes=100-", "bytes=1048676-"}},
		{name: "another start", offset: 100, serve: func(l *brokenLink, w http.ResponseWriter, from int64, try int) {
			l.send(w, from+1, -1)
		}, ranges: []string{"bytes=100-"}, err: "another start"},
		{name: "a negative offset", offset: -1, serve: atEnd, err: "offset -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &brokenLink{blob: blob, t: t, max: 3}
			l.serve = func(w http.ResponseWriter, from int64, try int) { tc.serve(l, w, from, try) }
			srv := httptest.NewTLSServer(l)
			defer srv.Close()
			c := (&fakeRegistry{srv: srv}).client(t, "u", "pw-read", false)
			c.resumeWait = 1
			rc, err := c.OpenBlobFrom(context.Background(), digest.FromBytes(blob), tc.offset)
			if err == nil {
				var got []byte
				got, err = io.ReadAll(rc)
				rc.Close()
				if err == nil && !bytes.Equal(got, blob[tc.offset:]) {
					t.Errorf("read %d bytes, not the blob's %d from %d", len(got), size-tc.offset, tc.offset)
				}
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("OpenBlobFrom: %v, want %q", err, tc.err)
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
		h                  []string
		from, size, length int64
		ok                 bool
	}{
		{[]string{"bytes 100-199/200"}, 100, -1, -1, true},
		{[]string{"bytes 100-199/200"}, 100, 200, 100, true},
		{[]string{"bytes 100-199/*"}, 100, 200, -1, true},
		{[]string{"bytes 100-199/*"}, 100, 300, -1, false},
		{[]string{"bytes 100-199/200"}, 100, -1, 10, false},
		{[]string{"bytes 99-199/200"}, 100, -1, -1, false},
		{[]string{"bytes 100-198/200"}, 100, -1, -1, false},
		{[]string{"bytes 100-199/300"}, 100, -1, -1, false},
		{[]string{"bytes 100-99/100"}, 100, -1, -1, false},
		{[]string{"bytes +100-199/200"}, 100, -1, -1, false},
		{[]string{"bytes 100--199/200"}, 100, -1, -1, false},
		{[]string{"items 100-199/200"}, 100, -1, -1, false},
		{[]string{"bytes 100-199"}, 100, -1, -1, false},
		{[]string{"bytes 100-199/200", "bytes 100-199/200"}, 100, -1, -1, false},
		{nil, 100, -1, -1, false},
	} {
		if total, err := checkContentRange(tc.h, tc.from, tc.size, tc.length); (err == nil) != tc.ok || (err == nil && total != 200) {
			t.Errorf("checkContentRange(%q, %d, %d, %d) = %v, want ok %v", tc.h, tc.from, tc.size, tc.length, err, tc.ok)
		}
	}
	long := []string{"bytes 1-" + strings.Repeat("9", 500_000) + "/*"}
	if _, err := checkContentRange(long, 100, -1, -1); err == nil || len(err.Error()) > 300 {
		t.Errorf("a 500 kB Content-Range: an error of %d bytes, want it cut short", len(fmt.Sprint(err)))
	}
}

// A read waiting to go on after a break ends at once when the caller
// cancels (with the caller's error, which is not temporary) or closes it;
// neither sends the GET it was waiting to send.
func TestClient_OpenBlobStopsWaitingToReadOn(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			l := &brokenLink{blob: blob, max: 1, t: t}
			l.serve = func(w http.ResponseWriter, from int64, try int) { l.send(w, from, 1000) }
			reg := httptest.NewTLSServer(l)
			defer reg.Close()
			c := (&fakeRegistry{srv: reg}).client(t, "u", "p", false)
			c.resumeWait = 10 * time.Second
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rc, err := c.OpenBlob(ctx, digest.FromBytes(blob))
			if err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(100*time.Millisecond, func() {
				if how == "cancel" {
					cancel()
				} else {
					rc.Close()
				}
			})
			start := time.Now()
			_, err = io.ReadAll(rc)
			rc.Close()
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the read ended after %s, want at once", took)
			}
			switch {
			case how == "cancel" && (!errors.Is(err, context.Canceled) || Temporary(err)):
				t.Errorf("cancelled while waiting: %v (temporary: %v), want context.Canceled, not temporary", err, Temporary(err))
			case how == "close" && !errors.Is(err, errClosedBlob):
				t.Errorf("closed while waiting: %v, want %v", err, errClosedBlob)
			}
			time.Sleep(200 * time.Millisecond)
			if g := l.gets(); len(g) != 1 {
				t.Errorf("GETs %q, want only the first", g)
			}
		})
	}
}
