package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
)

// OpenBlob opens the blob d for reading, following the registry's
// redirect to its storage (over HTTPS, without credentials, when that is
// another host). The caller closes it and checks what it reads against d.
// A blob the registry does not have is an *Error with StatusCode 404.
//
// A read whose connection breaks, or that receives nothing for the idle
// time, goes on where it stopped (Range: bytes=N-), as c/image's docker
// transport does: at once the first time, then whenever resumeProgress
// more bytes came since the last time, so a large layer over a poor link
// is not read again from its first byte, and a registry that breaks every
// read early is not asked forever. A registry that ignores the Range
// sends the blob from its start again; what was already read is skipped,
// once (a second time, the read fails). The caller's cancellation, or
// Close, ends the read at once.
func (c *Client) OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	return c.OpenBlobFrom(ctx, d, 0)
}

// OpenBlobFrom is OpenBlob for the blob's bytes from offset on (Range:
// bytes=offset-, checked as a resumed read's answer is; a registry that
// ignores it sends the blob from its start, and the first offset bytes are
// skipped). An offset at the blob's end gives an empty body.
func (c *Client) OpenBlobFrom(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, errs.Inputf("blob %q: %w", d, err)
	}
	if offset < 0 {
		return nil, errs.Inputf("blob %s: offset %d", d, offset)
	}
	u, err := c.url(nil, "blobs/"+d.String())
	if err != nil {
		return nil, c.secrets.Error(err)
	}
	b := &blobBody{c: c, ctx: ctx, u: u, d: d, size: -1, offset: offset, resumedAt: -1}
	b.life, b.end = context.WithCancelCause(ctx)
	b.body, err = b.open(offset)
	if err == errAtEnd {
		b.end(nil)
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		b.end(nil)
		return nil, err
	}
	return b, nil
}

// errAtEnd is a resumed read's answer that the blob has no bytes past
// the offset: the read was whole.
var errAtEnd = errors.New("nothing past the end")

// open sends one GET of the blob, for its bytes from from on, and checks
// the answer against what the first one said of the blob's size.
func (b *blobBody) open(from int64) (*watchedBody, error) {
	c := b.c
	// However slow the link, bytes keep coming; a body that stops for
	// blobIdle is abandoned (a temporary error).
	ctx, cancel := context.WithCancelCause(b.life)
	idle := c.blobIdle
	if idle <= 0 {
		idle = blobIdle
	}
	timer := time.AfterFunc(idle, func() { cancel(&StallError{What: "blob " + b.d.String(), Idle: idle}) })
	resp, err := c.do(ctx, c.blobs, request{method: http.MethodGet, url: b.u, rangeFrom: from})
	if err != nil {
		timer.Stop()
		cancel(nil)
		var stall *StallError
		if errors.As(context.Cause(ctx), &stall) {
			return nil, stall
		}
		return nil, c.secrets.Error(err)
	}
	body := &watchedBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, timer: timer, idle: idle}
	fail := func(err error) (*watchedBody, error) {
		body.Close()
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusOK && from == 0:
		b.size = resp.ContentLength
		return body, nil
	case resp.StatusCode == http.StatusOK:
		// The Range was ignored: the blob comes from its start again.
		if b.skipped {
			return fail(fmt.Errorf("the registry ignores Range: bytes=%d- again", from))
		}
		b.skipped = true
		if b.size >= 0 && resp.ContentLength >= 0 && resp.ContentLength != b.size {
			return fail(fmt.Errorf("the blob is %d bytes now, %d before", resp.ContentLength, b.size))
		}
		if _, err := io.CopyN(io.Discard, body, from); err != nil {
			return fail(fmt.Errorf("skip the %d bytes already read: %w", from, err))
		}
		return body, nil
	case resp.StatusCode == http.StatusPartialContent && from > 0:
		total, err := checkContentRange(resp.Header.Values("Content-Range"), from, b.size, resp.ContentLength)
		if err != nil {
			return fail(err)
		}
		if b.size < 0 {
			b.size = total
		}
		return body, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && from > 0 && (b.size < 0 || b.size == from) &&
		resp.Header.Get("Content-Range") == fmt.Sprintf("bytes */%d", from):
		// The connection broke after the last byte.
		body.Close()
		return nil, errAtEnd
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	body.Close()
	return nil, c.statusError(http.MethodGet, b.u, resp, msg)
}

// checkContentRange checks a 206 answer to Range: bytes=from-: its one
// Content-Range ("bytes F-L/T" or "bytes F-L/*") starts at from and runs
// to the blob's end, which is size when known (>= 0), and the body is
// that long when its length is known (length >= 0). It returns the
// blob's size, L+1.
func checkContentRange(h []string, from, size, length int64) (int64, error) {
	bad := func(why string) error {
		v := strings.Join(h, ", ")
		if len(v) > 100 {
			v = v[:100] + "…"
		}
		return fmt.Errorf("the registry answered Range: bytes=%d- with Content-Range %q: %s", from, v, why)
	}
	if len(h) != 1 {
		return -1, bad("want one")
	}
	spec, ok := strings.CutPrefix(h[0], "bytes ")
	rng, total, ok2 := strings.Cut(spec, "/")
	first, last, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return -1, bad("not bytes F-L/T")
	}
	f, err := strconv.ParseUint(first, 10, 63)
	if err != nil || int64(f) != from {
		return -1, bad("another start")
	}
	l, err := strconv.ParseUint(last, 10, 63)
	if err != nil || l < f {
		return -1, bad("not bytes F-L/T")
	}
	if total != "*" {
		if t, err := strconv.ParseUint(total, 10, 63); err != nil || l+1 != t {
			return -1, bad("not to the end")
		}
	}
	if size >= 0 && int64(l)+1 != size {
		return -1, bad(fmt.Sprintf("the blob was %d bytes", size))
	}
	if length >= 0 && length != int64(l-f)+1 {
		return -1, bad(fmt.Sprintf("the body is %d bytes", length))
	}
	return int64(l) + 1, nil
}

// resumeProgress is how many bytes a read must have brought since it last
// went on after a break to go on after the next one.
const resumeProgress = 1 << 20

// resumeWait is the pause before a broken read asks again.
const resumeWait = time.Second

// blobBody is a blob's body that goes on after a broken connection (see
// OpenBlob).
type blobBody struct {
	c         *Client
	ctx       context.Context         // the caller's
	life      context.Context         // ends with the caller's, or at Close
	end       context.CancelCauseFunc // ends life
	u         *url.URL
	d         digest.Digest
	size      int64 // the blob's size as the first answer gave it; -1: not known
	skipped   bool  // a resumed read skipped what came from a registry that ignored the Range
	offset    int64 // bytes read
	resumedAt int64 // offset of the last resume; -1 before any
	err       error // the error that ended the read

	mu     sync.Mutex
	body   *watchedBody // the connection read now
	closed bool
}

var errClosedBlob = errors.New("read of a closed blob")

func (b *blobBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		b.mu.Lock()
		body, closed := b.body, b.closed
		b.mu.Unlock()
		if closed {
			return 0, errClosedBlob
		}
		n, err := body.Read(p)
		b.offset += int64(n)
		if err == io.EOF && b.size >= 0 && b.offset != b.size {
			// A body with no length (chunked, or to the connection's
			// close) that ended short of the blob.
			err = io.ErrUnexpectedEOF
		}
		if err == nil || err == io.EOF || !broken(err) {
			return n, err
		}
		if b.resumedAt >= 0 && b.offset-b.resumedAt < resumeProgress {
			b.err = err
			return n, err
		}
		switch rerr := b.resume(); {
		case rerr == errAtEnd:
			b.err = io.EOF
			return n, io.EOF
		case b.ctx.Err() != nil:
			// The caller's cancellation, not the link's.
			b.err = context.Cause(b.ctx)
			return n, b.err
		case b.life.Err() != nil:
			b.err = errClosedBlob
			return n, b.err
		case rerr != nil:
			// Both kept: a resume answered 404 or 401 is not temporary.
			b.err = fmt.Errorf("%w (reading on from byte %d: %w)", err, b.offset, rerr)
			return n, b.err
		}
		if b.c.log != nil {
			b.c.log.WithField("blob", b.d.String()).Infof("the read broke at byte %d (%v): reading on from there", b.offset, b.c.secrets.Error(err))
		}
		if n > 0 {
			return n, nil
		}
	}
}

// broken reports whether err ends a read because the link broke or
// stalled (what is worth reading on after), not because of what was sent.
func broken(err error) bool {
	var stall *StallError
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &stall) || errors.As(err, &ne)
}

// resume replaces the broken connection with one for the rest of the
// blob.
func (b *blobBody) resume() error {
	b.mu.Lock()
	b.body.Close()
	b.mu.Unlock()
	if err := b.c.pauseToGoOn(b.life); err != nil {
		return err
	}
	body, err := b.open(b.offset)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		body.Close()
		return errClosedBlob
	}
	b.body = body
	b.resumedAt = b.offset
	return nil
}

func (b *blobBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.end(errClosedBlob)
	return b.body.Close()
}

// pauseToGoOn waits resumeWait before a broken read or upload goes on; it
// returns ctx's cause when ctx ends first.
func (c *Client) pauseToGoOn(ctx context.Context) error {
	wait := c.resumeWait
	if wait <= 0 {
		wait = resumeWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// blobIdle is how long a blob's body may send nothing before it is
// abandoned.
const blobIdle = 5 * time.Minute

// StallError is a transfer abandoned after Idle without a byte. It is a
// timeout (net.Error), so temporary.
type StallError struct {
	What string
	Idle time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s: nothing received for %s", e.What, e.Idle)
}
func (e *StallError) Timeout() bool   { return true }
func (e *StallError) Temporary() bool { return true }

// watchedBody is a blob's body whose every byte puts off its idle timer.
type watchedBody struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		var stall *StallError
		if errors.As(context.Cause(b.ctx), &stall) {
			return n, stall
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	b.cancel(nil)
	return b.ReadCloser.Close()
}
