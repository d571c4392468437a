package remote

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// sessionRegistry keeps upload sessions as distribution does
// (registry/handlers/blobupload.go, v3.1.2): what a request that broke off
// brought is kept; a request whose _state is not the session's size is
// answered 416 RANGE_INVALID (L337-342), as is a Content-Range that does
// not start there (L145-156); a GET of the session answers 204 with
// Range: 0-(size-1) ("0-0" when empty) and a Location with a fresh _state
// (L107-129, L349-366); the PUT with the digest checks it against all the
// session has; a DELETE at the session's offset cancels it
// (CancelBlobUpload, L281-295, reached through ResumeBlobUpload like the
// PATCH), after which the session is unknown (404 BLOB_UPLOAD_UNKNOWN).
type sessionRegistry struct {
	t *testing.T
	// cut says after how many bytes of its body the n-th body request
	// (PUT or PATCH with a body; n from 1) is hung up on; -1: not cut.
	cut func(n int) int
	// status, when set, answers the n-th session GET instead.
	status func(w http.ResponseWriter, n int, size int)
	// patchAnswer, when set, answers a PATCH that brought its whole body.
	patchAnswer int
	// keep, when set, says how many bytes the session still has when it
	// is asked the n-th time (it lost the rest); -1: all.
	keep func(n int) int
	// answerDigest, when set, is the Docker-Content-Digest of the end.
	answerDigest string

	mu        sync.Mutex
	stored    []byte
	bodies    int
	statuses  int
	cancelled bool
	log       []string
}

func (s *sessionRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const session = "/v2/team/agent/blobs/uploads/s1"
	state := strconv.Itoa(len(s.stored))
	entry := r.Method
	if cr := r.Header.Get("Content-Range"); cr != "" {
		entry += " " + cr
	}
	defer func() { s.log = append(s.log, entry) }()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v2/team/agent/blobs/uploads/":
		w.Header().Set("Location", session+"?_state=0")
		w.WriteHeader(http.StatusAccepted)
		return
	case r.URL.Path != session:
		http.NotFound(w, r)
		return
	case s.cancelled:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}`)
		return
	case r.Method == http.MethodGet:
		s.statuses++
		if s.keep != nil {
			if k := s.keep(s.statuses); k >= 0 && k < len(s.stored) {
				s.stored = s.stored[:k]
				state = strconv.Itoa(k)
			}
		}
		if s.status != nil {
			s.status(w, s.statuses, len(s.stored))
			return
		}
		end := max(len(s.stored)-1, 0)
		w.Header().Set("Range", fmt.Sprintf("0-%d", end))
		w.Header().Set("Location", session+"?_state="+state)
		w.WriteHeader(http.StatusNoContent)
		return
	case r.URL.Query().Get("_state") != state:
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		io.WriteString(w, `{"errors":[{"code":"RANGE_INVALID"}]}`)
		return
	}
	if r.Method == http.MethodDelete {
		s.cancelled, s.stored = true, nil
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if cr := r.Header.Get("Content-Range"); cr != "" && !strings.HasPrefix(cr, state+"-") {
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		io.WriteString(w, `{"errors":[{"code":"RANGE_INVALID"}]}`)
		return
	}
	if r.ContentLength != 0 {
		s.bodies++
		if n := s.cut(s.bodies); n >= 0 {
			got, _ := io.ReadAll(io.LimitReader(r.Body, int64(n)))
			s.stored = append(s.stored, got...)
			entry += fmt.Sprintf(" cut at %d", len(got))
			// Hung up on before any answer: the client is still sending.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			conn.Close()
			return
		}
	}
	got, err := io.ReadAll(r.Body)
	s.stored = append(s.stored, got...)
	if err != nil {
		entry += " broke off" // the client's body failed
		return
	}
	entry += fmt.Sprintf(" %d", len(got))
	switch r.Method {
	case http.MethodPatch:
		w.Header().Set("Location", session+"?_state="+strconv.Itoa(len(s.stored)))
		w.WriteHeader(cmp.Or(s.patchAnswer, http.StatusAccepted))
	case http.MethodPut:
		if d := r.URL.Query().Get("digest"); d != digest.FromBytes(s.stored).String() {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errors":[{"code":"DIGEST_INVALID"}]}`)
			return
		}
		if s.answerDigest != "" {
			w.Header().Set("Docker-Content-Digest", s.answerDigest)
		}
		w.WriteHeader(http.StatusCreated)
	}
}

// rereadable is a blob's body that can be read again from an offset.
type rereadable struct {
	blob    []byte
	pos     int
	read    int   // the most read so far
	failAt  int   // > 0: Read fails once pos reaches it
	gone    error // what Reread answers, when set
	rereads []int64
}

func (r *rereadable) Read(p []byte) (int, error) {
	if r.failAt > 0 && r.pos >= r.failAt {
		return 0, errors.New("source: read failed")
	}
	n := copy(p, r.blob[r.pos:])
	r.pos += n
	r.read = max(r.read, r.pos)
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *rereadable) Reread(ctx context.Context, offset int64) error {
	if offset > int64(r.read) {
		return fmt.Errorf("reread from %d, past the %d read", offset, r.read)
	}
	r.rereads = append(r.rereads, offset)
	r.pos = int(offset)
	return r.gone
}

// An upload whose connection breaks goes on from the byte the registry
// has: a GET of the session says what it has and where to go on, a PATCH
// with Content-Range sends the rest, the PUT ends it with the digest. It
// goes on at once the first time and then only after resumeProgress more
// bytes; a registry that says it has more than was sent, a source that
// failed, a body that cannot be read again or an unknown size end it with
// the error; a 416 to the PATCH is a temporary *Error to start again.
func TestClient_PutBlobGoesOnAfterABreak(t *testing.T) {
	blob := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range blob {
		blob[i] = byte(rng.Uint32())
	}
	d := digest.FromBytes(blob)
	n := len(blob)
	cutAt := func(at ...int) func(int) int {
		return func(i int) int {
			if i <= len(at) {
				return at[i-1]
			}
			return -1
		}
	}
	rest := func(from int) string { return fmt.Sprintf("PATCH %d-%d", from, n-1) }
	restart := func(status int) func(error) bool {
		return func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Restart && e.StatusCode == status && Temporary(err)
		}
	}
	for _, tc := range []struct {
		name         string
		cut          func(int) int
		status       func(w http.ResponseWriter, n int, size int)
		patchAnswer  int
		answerDigest string
		size         int64 // 0: len(blob)
		plain        bool  // the body is not a Rereader
		failAt       int   // the source fails there
		gone         error // Reread's answer
		want         []string
		rereads      []int64
		check        func(error) bool // nil: no error and the blob stored whole
		left         bool             // with check: the session is not cancelled
	}{
		{name: "breaks once", cut: cutAt(1 << 20),
			want: []string{"POST", "PUT cut at 1048576", "GET", rest(1<<20) + " 2097152", "PUT 0"}, rereads: []int64{1 << 20}},
		{name: "breaks in the PATCH too, after more than resumeProgress", cut: cutAt(1<<20, 1<<20+5),
			want:    []string{"POST", "PUT cut at 1048576", "GET", rest(1<<20) + " cut at 1048581", "GET", rest(2<<20+5) + " 1048571", "PUT 0"},
			rereads: []int64{1 << 20, 2<<20 + 5}},
		{name: "breaks again too soon", cut: cutAt(1<<20, 1000),
			want:  []string{"POST", "PUT cut at 1048576", "GET", rest(1<<20) + " cut at 1000", "GET", "DELETE"},
			check: func(err error) bool { return Temporary(err) }, rereads: []int64{1 << 20}},
		{name: "breaks before a byte", cut: cutAt(0),
			want: []string{"POST", "PUT cut at 0", "GET", rest(0) + " 3145728", "PUT 0"}, rereads: []int64{0}},
		{name: "has one byte, says 0-0", cut: cutAt(1),
			want: []string{"POST", "PUT cut at 1", "GET", rest(0), "GET", "DELETE"}, rereads: []int64{0}, check: restart(http.StatusRequestedRangeNotSatisfiable)},
		{name: "breaks after the last byte", cut: cutAt(n), // nothing to read again
			want: []string{"POST", "PUT cut at " + strconv.Itoa(n), "GET", "PUT 0"}},
		{name: "says it has more than was sent", cut: cutAt(1 << 20),
			status: func(w http.ResponseWriter, _, size int) {
				w.Header().Set("Range", fmt.Sprintf("0-%d", n))
				w.Header().Set("Location", "/v2/team/agent/blobs/uploads/s1?_state="+strconv.Itoa(size))
				w.WriteHeader(http.StatusNoContent)
			},
			want: []string{"POST", "PUT cut at 1048576", "GET", "DELETE"},
			check: func(err error) bool {
				return restart(http.StatusNoContent)(err) && strings.Contains(err.Error(), "more than the")
			}},
		{name: "breaks after the last byte of a short PATCH", cut: cutAt(n-512<<10, 512<<10), // less than resumeProgress, but all there
			want:    []string{"POST", "PUT cut at 2621440", "GET", rest(n-512<<10) + " cut at 524288", "GET", "PUT 0"},
			rereads: []int64{int64(n - 512<<10)}},
		{name: "ends with another digest after going on", cut: cutAt(1 << 20), answerDigest: digest.FromString("other").String(),
			want: []string{"POST", "PUT cut at 1048576", "GET", rest(1<<20) + " 2097152", "PUT 0"}, rereads: []int64{1 << 20},
			check: restart(http.StatusCreated), left: true}, // ended by the PUT
		{name: "answers the PATCH 201", cut: cutAt(1 << 20), patchAnswer: http.StatusCreated,
			want: []string{"POST", "PUT cut at 1048576", "GET", rest(1<<20) + " 2097152", "GET", "DELETE"}, rereads: []int64{1 << 20},
			check: restart(http.StatusCreated)},
		{name: "refuses the PATCH (405)", cut: cutAt(1 << 20), patchAnswer: http.StatusMethodNotAllowed,
			want: []string{"POST", "PUT cut at 1048576", "GET", rest(1<<20) + " 2097152", "GET", "DELETE"}, rereads: []int64{1 << 20},
			check: restart(http.StatusMethodNotAllowed)},
		{name: "refuses to say (distribution v2.8)", cut: cutAt(1 << 20),
			status: func(w http.ResponseWriter, _, _ int) {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"blob upload invalid"}]}`)
			},
			want:  []string{"POST", "PUT cut at 1048576", "GET"}, // v2.8 cancels it itself: nothing follows
			check: func(err error) bool { return Temporary(err) && strings.Contains(err.Error(), "404") }, left: true},
		{name: "a Range that is not 0-N", cut: cutAt(1 << 20),
			status: func(w http.ResponseWriter, _, _ int) {
				w.Header().Set("Range", "5-9")
				w.WriteHeader(http.StatusNoContent)
			},
			want:  []string{"POST", "PUT cut at 1048576", "GET", "GET", "DELETE"}, // at the session's last Location, once (refused: stale)
			check: func(err error) bool { return Temporary(err) && strings.Contains(err.Error(), `Range "5-9"`) }, left: true},
		{name: "the old Location to go on with", cut: cutAt(1 << 20),
			status: func(w http.ResponseWriter, _, _ int) {
				w.Header().Set("Range", fmt.Sprintf("0-%d", 1<<20-1))
				w.Header().Set("Location", "/v2/team/agent/blobs/uploads/s1?_state=0")
				w.WriteHeader(http.StatusNoContent)
			},
			want:    []string{"POST", "PUT cut at 1048576", "GET", rest(1 << 20), "GET", "DELETE", "GET", "DELETE", "GET", "DELETE", "GET", "DELETE"}, // refused (416) as the PATCH, cancelTries times
			rereads: []int64{1 << 20},
			check:   restart(http.StatusRequestedRangeNotSatisfiable), left: true},
		{name: "the source fails to open again", cut: cutAt(1 << 20), gone: &Error{Method: "GET", StatusCode: http.StatusForbidden},
			want: []string{"POST", "PUT cut at 1048576", "GET", "DELETE"}, rereads: []int64{1 << 20},
			check: func(err error) bool { return Temporary(err) && strings.Contains(err.Error(), "403") }}, // the whole upload may start again
		{name: "a body that cannot be read again", cut: cutAt(1 << 20), plain: true,
			want: []string{"POST", "PUT cut at 1048576", "GET", "DELETE"}, check: func(err error) bool { return Temporary(err) }},
		{name: "unknown size", cut: cutAt(1 << 20), size: -1,
			want: []string{"POST", "PUT cut at 1048576", "GET", "DELETE"}, check: func(err error) bool { return Temporary(err) }},
		{name: "the source fails", cut: cutAt(-1), failAt: 1 << 20,
			want:  []string{"POST", "GET", "DELETE"}, // the PUT may not reach the handler: the point is that only the cancel follows it
			check: func(err error) bool { return strings.Contains(err.Error(), "source: read failed") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sessionRegistry{t: t, cut: tc.cut, status: tc.status, patchAnswer: tc.patchAnswer, answerDigest: tc.answerDigest}
			f := &fakeRegistry{srv: httptest.NewTLSServer(s)}
			defer f.srv.Close()
			c := f.client(t, "u", "pw-upload", false)
			c.resumeWait = 1
			src := &rereadable{blob: blob, failAt: tc.failAt, gone: tc.gone}
			var body io.Reader = src
			if tc.plain {
				body = io.MultiReader(src)
			}
			size := tc.size
			if size == 0 {
				size = int64(n)
			}
			err := c.PutBlob(context.Background(), d, size, body)
			f.srv.Close() // waits for the handlers: the log is whole
			s.mu.Lock()
			log, stored := slices.Clone(s.log), slices.Clone(s.stored)
			s.mu.Unlock()
			if tc.check == nil {
				if err != nil {
					t.Fatalf("PutBlob: %v", err)
				}
				if !bytes.Equal(stored, blob) {
					t.Errorf("stored %d bytes (%s), want the %d of the blob", len(stored), digest.FromBytes(stored), n)
				}
			} else if err == nil || !tc.check(err) {
				t.Errorf("PutBlob: %v (temporary %t)", err, Temporary(err))
			}
			if tc.failAt > 0 {
				// The broken PUT may reach the handler before the cancel
				// (and break off there), after it (and find no session:
				// "PUT", nothing stored), or not at all.
				log = slices.DeleteFunc(log, func(e string) bool { return e == "PUT broke off" || e == "PUT" })
				// The handler may still be reading the broken PUT when
				// the cancel asks for the offset: the DELETE at an offset
				// that moved is refused (416) and asked again, as against
				// distribution (cancelTries). One pair or more; the
				// session must end cancelled (checked below).
				for len(log) >= 4 && slices.Equal(log[len(log)-4:], []string{"GET", "DELETE", "GET", "DELETE"}) {
					log = log[:len(log)-2]
				}
			}
			if !slices.Equal(log, tc.want) {
				t.Errorf("requests %q,\nwant %q", log, tc.want)
			}
			if !slices.Equal(src.rereads, tc.rereads) {
				t.Errorf("reread from %v, want %v", src.rereads, tc.rereads)
			}
			if want := tc.check != nil && !tc.left; s.cancelled != want {
				t.Errorf("the session cancelled: %t, want %t", s.cancelled, want)
			}
			if c.chunked.Load() {
				t.Error("the client sends bodies in PATCHes from now on: only a refused first PUT says so")
			}
		})
	}
}

// A cancel while the upload waits to go on ends it at once with the
// cancel, which is not temporary.
func TestClient_PutBlobStopsWaitingToGoOn(t *testing.T) {
	blob := bytes.Repeat([]byte("x"), 2<<20)
	s := &sessionRegistry{t: t, cut: func(int) int { return 1 << 20 }}
	f := &fakeRegistry{srv: httptest.NewTLSServer(s)}
	defer f.srv.Close()
	c := f.client(t, "u", "pw-upload", false)
	c.resumeWait = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			s.mu.Lock()
			n := len(s.log)
			s.mu.Unlock()
			if n >= 2 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	err := c.PutBlob(ctx, digest.FromBytes(blob), int64(len(blob)), &rereadable{blob: blob})
	if !errors.Is(err, context.Canceled) || Temporary(err) {
		t.Fatalf("PutBlob: %v, want the cancel", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Nothing after the break but the session's cancel.
	if want := []string{"POST", "PUT cut at 1048576", "GET", "DELETE"}; !slices.Equal(s.log, want) || !s.cancelled {
		t.Errorf("requests %q (cancelled %t), want %q", s.log, s.cancelled, want)
	}
}

// A registry that keeps only a little of what each request takes, however
// steady its progress, cannot make an upload send more than maxUploadSent
// times the blob: it stops going on, with the break's error (temporary:
// a new session starts from byte 0).
func TestClient_PutBlobBoundsWhatItSends(t *testing.T) {
	const mib = 1 << 20
	blob := bytes.Repeat([]byte("z"), 8*mib)
	s := &sessionRegistry{t: t, keep: func(n int) int { return n * mib }}
	s.cut = func(int) int { return len(blob) - len(s.stored) - 1 } // all but the last byte
	f := &fakeRegistry{srv: httptest.NewTLSServer(s)}
	defer f.srv.Close()
	c := f.client(t, "u", "pw-upload", false)
	c.resumeWait = 1
	src := &rereadable{blob: blob}
	err := c.PutBlob(context.Background(), digest.FromBytes(blob), int64(len(blob)), src)
	f.srv.Close()
	if err == nil || !Temporary(err) {
		t.Fatalf("PutBlob: %v, want the break's temporary error", err)
	}
	want := []string{"POST", "PUT cut at 8388607", "GET", "PATCH 1048576-8388607 cut at 7340031", "GET", "PATCH 2097152-8388607 cut at 6291455", "GET", "DELETE"}
	if !slices.Equal(s.log, want) {
		t.Errorf("requests %q,\nwant %q", s.log, want)
	}
	if !slices.Equal(src.rereads, []int64{mib, 2 * mib}) {
		t.Errorf("reread from %v", src.rereads)
	}
}

// A cancel while the source is opened again ends the upload with the
// cancel, not with the break's temporary error.
func TestClient_PutBlobCancelledWhileReadingAgain(t *testing.T) {
	blob := bytes.Repeat([]byte("y"), 2<<20)
	s := &sessionRegistry{t: t, cut: func(n int) int {
		if n == 1 {
			return 1 << 20
		}
		return -1
	}}
	f := &fakeRegistry{srv: httptest.NewTLSServer(s)}
	defer f.srv.Close()
	c := f.client(t, "u", "pw-upload", false)
	c.resumeWait = 1
	ctx, cancel := context.WithCancel(context.Background())
	src := &cancelling{rereadable: rereadable{blob: blob}, cancel: cancel}
	err := c.PutBlob(ctx, digest.FromBytes(blob), int64(len(blob)), src)
	if !errors.Is(err, context.Canceled) || Temporary(err) {
		t.Fatalf("PutBlob: %v (temporary %t), want the cancel", err, Temporary(err))
	}
}

// cancelling is a body whose Reread is cancelled under it.
type cancelling struct {
	rereadable
	cancel context.CancelFunc
}

func (c *cancelling) Reread(ctx context.Context, offset int64) error {
	c.cancel()
	return ctx.Err()
}

// A registry that cannot say where a failed upload's session is (no GET
// of sessions: 405) is asked once to delete it where it was last said to
// be; the upload's own error is what PutBlob returns.
func TestClient_PutBlobCancelsWithoutAStatus(t *testing.T) {
	var mu sync.Mutex
	var log []string
	f := &fakeRegistry{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		log = append(log, r.Method)
		mu.Unlock()
		switch r.Method {
		case http.MethodPost:
			w.Header().Set("Location", "/v2/team/agent/blobs/uploads/s1")
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPut:
			http.Error(w, "storage full", http.StatusInsufficientStorage)
		case http.MethodGet:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer f.srv.Close()
	c := f.client(t, "u", "pw-upload", false)
	blob := []byte("a layer")
	err := c.PutBlob(context.Background(), digest.FromBytes(blob), int64(len(blob)), bytes.NewReader(blob))
	if StatusCode(err) != http.StatusInsufficientStorage {
		t.Fatalf("PutBlob: %v, want the PUT's 507", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"POST", "PUT", "GET", "DELETE"}; !slices.Equal(log, want) {
		t.Errorf("requests %q, want %q", log, want)
	}
}
