package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/opencontainers/go-digest"
)

// PutBlob uploads the blob d: size bytes (-1: not known) read from r.
// It is a write (see PutManifest) of two requests, as containerd pushes:
// POST blobs/uploads/ opens an upload session, and one PUT to the
// session's Location sends the whole body with the digest, which the
// registry checks before it keeps the blob. (c/image and crane send the
// body in a PATCH between them, a third round trip; c/image also asks
// again whether the blob is there.) A registry that refuses that PUT
// (405, or a 404 other than a lost session: Artifactory 6, older Pulp) is
// sent the body in a PATCH from then on.
//
// An upload whose connection breaks, or that the registry stops taking
// for the client's idle time, goes on from the byte the registry has when
// r is a Rereader and size is known: a GET of the session answers what it
// has (Range: 0-N) and a Location to go on with, and a PATCH with
// Content-Range sends the rest before the PUT with the digest. This is
// the upload session protocol of the distribution spec, as distribution
// v3 (registry/handlers/blobupload.go, v3.1.2: GetUploadStatus,
// PatchBlobData) serves it; the Location the session had before the break
// is refused there (416), which is why it is asked again. Distribution
// v2.8 cancels a session asked after a break (404 BLOB_UPLOAD_INVALID:
// its GET checked the stale _state until distribution/distribution#3755):
// the break's own error is returned, and the upload starts again. It goes
// on at once the first time, then whenever the registry kept
// resumeProgress more bytes since the last time or has them all, as long
// as the session sends at most maxUploadSent times the blob in all. Once
// it goes on, a registry that says it has more than was sent, answers the
// PATCH other than 202 or without a Location, refuses the end, or ends it
// with another digest fails the upload with an *Error with Restart set (a
// Location on another host is a *RefusedError).
//
// Each request reads at most one byte more than it should send: a source
// that sends more fails the upload with an *errs.IntegrityError. An upload
// that cannot go on is abandoned with the error that broke it (a
// *StallError after the idle time). A session the registry lost (404),
// whose token expired (401) or that is not where it was said to be (416)
// is an *Error with Restart set: temporary, the whole upload may start
// again. The session of an upload that fails, for whatever reason, is
// cancelled (DELETE), so that the registry does not keep what it took.
func (c *Client) PutBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	err := c.putBlob(ctx, d, size, r)
	return c.secrets.Error(err)
}

// A Rereader is an upload's body that can be read again from an offset
// (see PutBlob).
type Rereader interface {
	io.Reader
	// Reread makes the next Read return the blob's bytes from offset on;
	// offset is never past the bytes read so far.
	Reread(ctx context.Context, offset int64) error
}

func (c *Client) putBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) (err error) {
	if err := d.Validate(); err != nil {
		return errs.Inputf("blob %q: %w", d, err)
	}
	if size < -1 {
		return errs.Inputf("blob %s: size %d", d, size)
	}
	u, err := c.url(nil, "blobs/uploads/")
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, c.http, request{method: http.MethodPost, url: u})
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return c.statusError(http.MethodPost, u, resp, answer)
	}
	// The session is on this registry (url refuses any other host), and
	// is written with the Authorization that opened it.
	up := upload{c: c, d: d, size: size, authz: resp.Request.Header.Get("Authorization"), resumedAt: -1}
	if up.session, err = c.location(resp); err != nil {
		return err
	}
	defer func() {
		if err != nil && !up.ended {
			up.abandon(ctx)
		}
	}()
	chunked := c.chunked.Load()
	method, loc := http.MethodPut, withDigest(up.session, d)
	if chunked {
		method, loc = http.MethodPatch, up.session
	}
	for {
		var a attempt
		a, err = c.sendBody(ctx, method, loc, up.authz, d, up.from, size, up.resumedAt >= 0, r)
		if err == nil {
			resp, answer = a.resp, a.answer
			break
		}
		if err = up.goOn(ctx, err, a, r); err != nil {
			return err
		}
		// The rest goes in a PATCH to the Location the registry gave.
		chunked, method, loc = true, http.MethodPatch, up.session
		if up.from == size {
			resp = nil
			break
		}
	}
	if resp != nil && method == http.MethodPatch && resp.StatusCode == http.StatusAccepted || resp == nil {
		// The body is there; the session ends with the digest.
		if resp != nil {
			if loc, err = c.location(resp); err != nil {
				if e := (*Error)(nil); errors.As(err, &e) && up.resumedAt >= 0 {
					e.Restart = true
				}
				return err
			}
		}
		loc = withDigest(loc, d)
		// The registry stores the blob now (moves it into S3): it has
		// commitWait to answer, as after a body.
		cctx, cancel := context.WithTimeout(ctx, commitWait)
		defer cancel()
		if resp, err = c.send(cctx, c.uploads, request{method: http.MethodPut, url: loc, authz: up.authz}); err != nil {
			return err
		}
		answer, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		method = http.MethodPut
	}
	// The session is over once it is answered 201, or said to be lost.
	up.ended = method == http.MethodPut && resp.StatusCode == http.StatusCreated ||
		resp.StatusCode == http.StatusNotFound && strings.Contains(string(answer), "BLOB_UPLOAD_UNKNOWN")
	// A PATCH is answered 202 and where to go on; anything else, even a
	// 201 that never saw the digest, fails.
	if method == http.MethodPatch || resp.StatusCode != http.StatusCreated {
		e := c.statusError(method, loc, resp, answer)
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			// A lost session (BLOB_UPLOAD_UNKNOWN: the spec says the
			// upload MUST restart), or a registry that takes the body
			// only in a PATCH (405 to the PUT that sent it; Artifactory 6
			// answers 404 BLOB_UNKNOWN).
			if !chunked && !strings.Contains(string(answer), "BLOB_UPLOAD_UNKNOWN") {
				c.chunked.Store(true)
			}
			e.Restart = true
		case http.StatusRequestedRangeNotSatisfiable:
			// A session that is not at the offset it said.
			e.Restart = true
		case http.StatusUnauthorized:
			c.forgetPush()
			e.Restart = true
		}
		// After going on, whatever went wrong may be the session's: the
		// upload starts again from its first byte.
		e.Restart = e.Restart || up.resumedAt >= 0
		return e
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		if up.resumedAt >= 0 {
			// The session's doing, after going on: start again.
			return &Error{Method: method, URL: loc.Redacted(), StatusCode: resp.StatusCode, Restart: true,
				Detail: fmt.Sprintf("Docker-Content-Digest %.100s, not %s, after going on", got, d)}
		}
		return &errs.IntegrityError{What: "blob " + d.String() + " written to " + c.host, Check: "Docker-Content-Digest", Expected: d.String(), Actual: got}
	}
	return nil
}

// upload is one blob's upload session, as it goes on after breaks.
type upload struct {
	c         *Client
	d         digest.Digest
	size      int64
	authz     string
	session   *url.URL // the Location to ask for its state and to go on with
	from      int64    // bytes the registry has
	resumedAt int64    // from at the last time it went on; -1 before any
	sent      int64    // bytes the requests of this session took, in all
	ended     bool     // the registry ended the session, or lost it
	fresh     bool     // session is at the session's offset: asked since the last request
}

// abandonWait bounds the cancelling of a failed upload's session;
// cancelTries is how many times it asks where the session is.
const (
	abandonWait = 5 * time.Second
	cancelTries = 4
)

// abandon cancels the session of an upload that failed, as regclient does
// (scheme/reg/blob.go, blobUploadCancel): a registry otherwise keeps what
// the session took until it purges old sessions (distribution: a week, by
// default), and a publish that fails nightly in a 200 MB layer would leave
// 200 MB a night. Distribution refuses a DELETE at a Location whose offset
// is stale (416: v3.1.2 blobUploadDispatcher passes every method but GET
// and HEAD through ResumeBlobUpload), which a request that broke off
// leaves behind: the session is asked first for a Location at its offset.
// A session it does not know any more (v2.8 cancels one asked after a
// break) needs nothing. It is done even when ctx is cancelled (an aborted
// build leaves nothing behind either), within abandonWait, and its failure
// is only logged: the upload's own error is what counts.
func (up *upload) abandon(ctx context.Context) {
	c := up.c
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonWait)
	defer cancel()
	what, err := up.cancel(ctx)
	if c.log == nil {
		return
	}
	l := c.log.WithField("blob", up.d.String())
	if err != nil {
		l.Debugf("the failed upload's session is left to the registry: %v", c.secrets.Error(err))
		return
	}
	l.Debug(what)
}

// cancel asks where the session is, unless it was asked since the last
// request, then deletes it; it says what it did. A registry may still be
// storing what a request that failed brought (it reads the rest of the
// body its connection had): its offset moves on, and a DELETE at the one
// it said is refused (416). It is asked again, after a pause that doubles
// from 50 ms, cancelTries times in all.
func (up *upload) cancel(ctx context.Context) (string, error) {
	c := up.c
	loc := up.session
	for try, pause := 1, 50*time.Millisecond; ; try, pause = try+1, pause*2 {
		if !up.fresh {
			_, at, err := up.status(ctx)
			switch {
			case up.ended:
				return "the registry no longer has the failed upload's session", nil
			case err == nil:
				loc = at
			case try == 1 && ctx.Err() == nil:
				// A registry that cannot say where the session is (no
				// GET of it, a Range it does not form) is asked to
				// delete it where it was last said to be, once.
				try = cancelTries
			default:
				return "", err
			}
		}
		up.fresh = false
		resp, err := c.send(ctx, c.http, request{method: http.MethodDelete, url: loc, authz: up.authz})
		if err != nil {
			return "", err
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNoContent, http.StatusAccepted:
			return "cancelled the failed upload's session", nil
		case http.StatusRequestedRangeNotSatisfiable:
			if try == cancelTries {
				break
			}
			select {
			case <-time.After(pause):
				continue
			case <-ctx.Done():
			}
		}
		return "", c.statusError(http.MethodDelete, loc, resp, answer)
	}
}

// maxUploadSent bounds what one upload session sends, going on after
// breaks, in multiples of the blob's size: a registry that keeps little of
// what it takes cannot make it send much more (a new session starts from
// byte 0 instead).
const maxUploadSent = 3

// goOn decides whether the upload goes on after err, which ended an
// attempt that sent a: when it may (see PutBlob), it asks the registry
// what it has, rereads r from there and returns nil; otherwise it returns
// the error to end the upload with.
func (up *upload) goOn(ctx context.Context, err error, a attempt, r io.Reader) error {
	if ctx.Err() != nil {
		return context.Cause(ctx) // the caller's cancellation, not the link's
	}
	up.sent += a.taken
	rr, ok := r.(Rereader)
	if !ok || up.size < 0 || a.srcErr != nil || !broken(err) {
		return err
	}
	if perr := up.c.pauseToGoOn(ctx); perr != nil {
		return perr
	}
	have, next, serr := up.status(ctx)
	if serr == nil {
		// Where it is, should it not go on (see abandon).
		up.session, up.fresh = next, true
	}
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case serr != nil:
		return fmt.Errorf("%w (asking the registry what it has of the upload: %v)", err, serr)
	case have > up.from+a.taken || have > up.size:
		// Its bookkeeping, not the blob: the upload starts again.
		return &Error{Method: http.MethodGet, URL: up.session.Redacted(), StatusCode: http.StatusNoContent, Restart: true,
			Detail: fmt.Sprintf("the registry says it has %d bytes of the upload, more than the %d sent", have, min(up.from+a.taken, up.size))}
	case have < up.size && up.resumedAt >= 0 && have-up.resumedAt < resumeProgress:
		// Too little since the last time.
		return err
	case up.sent+up.size-have > maxUploadSent*up.size:
		// Going on would send more than maxUploadSent times the blob.
		return err
	}
	if have < up.size {
		if rerr := rr.Reread(ctx, have); rerr != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("%w (reading the blob again from byte %d: %v)", err, have, rerr)
		}
	}
	if up.c.log != nil {
		up.c.log.WithField("blob", up.d.String()).Infof("the upload broke after %d bytes (%v): going on from byte %d, which the registry has", up.from+a.taken, up.c.secrets.Error(err), have)
	}
	up.from, up.resumedAt, up.fresh = have, have, false
	return nil
}

// status asks the registry how many bytes of the upload it has (GET on
// the session: 204 with Range: 0-N, N the last byte's offset) and where
// to go on. "0-0" is read as nothing: the spec's form cannot tell none
// from one byte; a registry that has one refuses the PATCH's Content-Range
// 0-… (416), and the upload starts again.
func (up *upload) status(ctx context.Context) (int64, *url.URL, error) {
	c := up.c
	resp, err := c.send(ctx, c.http, request{method: http.MethodGet, url: up.session, authz: up.authz})
	if err != nil {
		return 0, nil, err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		// A session it does not know (v2.8 ends one asked at a stale
		// offset) needs no cancel.
		up.ended = up.ended || resp.StatusCode == http.StatusNotFound
		return 0, nil, c.statusError(http.MethodGet, up.session, resp, answer)
	}
	rng := resp.Header.Get("Range")
	first, last, ok := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
	end, perr := strconv.ParseUint(last, 10, 63)
	if !ok || first != "0" || perr != nil {
		v := rng
		if len(v) > 100 {
			v = v[:100] + "…"
		}
		return 0, nil, fmt.Errorf("the upload's state has Range %q, not 0-N", v)
	}
	next, err := c.location(resp)
	if err != nil {
		return 0, nil, err
	}
	if end == 0 {
		return 0, next, nil
	}
	return int64(end) + 1, next, nil
}

// location is the upload session an answer names (Location), on this
// registry.
func (c *Client) location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, &Error{Method: resp.Request.Method, URL: resp.Request.URL.Redacted(), StatusCode: resp.StatusCode, Detail: "no Location for the upload session"}
	}
	return c.url(resp.Request.URL, loc)
}

// withDigest is u with the digest parameter that ends an upload.
func withDigest(u *url.URL, d digest.Digest) *url.URL {
	q := u.Query()
	q.Set("digest", d.String())
	out := *u
	out.RawQuery = q.Encode()
	return &out
}

// attempt is what one request of an upload did.
type attempt struct {
	resp   *http.Response
	answer []byte // the start of the answer's body
	taken  int64  // bytes of the body the transport took
	srcErr error  // the body's own read error, when it failed
}

// sendBody sends r, the blob's bytes from from on (size: the blob's size,
// -1 when not known), as the body of method to u, with a Content-Range
// when ranged, and returns the answer with the start of its body. The
// body is abandoned (a *StallError) when the transport takes nothing of
// it for the idle time, or when the registry does not answer for
// commitWait after the last byte; r is read by no one once sendBody
// returns.
func (c *Client) sendBody(ctx context.Context, method string, u *url.URL, authz string, d digest.Digest, from, size int64, ranged bool, r io.Reader) (attempt, error) {
	length := int64(-1)
	if size >= 0 {
		length = size - from
		if length < math.MaxInt64 {
			r = io.LimitReader(r, length+1)
		}
	}
	var contentRange string
	if ranged {
		contentRange = fmt.Sprintf("%d-%d", from, size-1)
	}
	idle := c.blobIdle
	if idle <= 0 {
		idle = blobIdle
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := &StallError{What: "upload of blob " + d.String(), Idle: idle}
	timer := time.AfterFunc(idle, func() { cancel(stalled) })
	defer timer.Stop()
	body := &uploadBody{r: r, timer: timer, idle: idle, stalled: stalled, done: make(chan struct{})}
	if length == 0 {
		body.Close() // sent as http.NoBody: the transport never sees it
	}
	resp, err := c.send(ctx, c.uploads, request{method: method, url: u, contentType: "application/octet-stream", contentRange: contentRange, stream: body, length: length, authz: authz})
	var a attempt
	if err == nil {
		a.resp = resp
		a.answer, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		// Closed before the wait: a registry that answered early and
		// stopped reading is hung up on, which ends the transport's write.
		resp.Body.Close()
	}
	// The transport may answer before it is done with the body (it reads
	// on to check the length): what it read is known once it closed it.
	select {
	case <-body.done:
	case <-ctx.Done():
	}
	a.taken, a.srcErr = body.terminate()
	if length >= 0 && a.taken > length {
		return a, &errs.IntegrityError{What: "blob " + d.String() + " to upload", Check: "size", Expected: fmt.Sprintf("%d bytes", size), Actual: "more"}
	}
	if err != nil {
		var stall *StallError
		if errors.As(context.Cause(ctx), &stall) {
			return a, stall
		}
		return a, err
	}
	return a, nil
}

// commitWait is how long a registry may take to answer an upload once it
// has every byte (moving a large blob into S3 takes minutes).
const commitWait = 30 * time.Minute

// uploadBody is an upload's body: every byte the transport takes puts
// off the timer that abandons it (once the last is taken, by commitWait),
// and done is closed once the transport closes it. Once terminated, it
// reads no more of r.
type uploadBody struct {
	mu         sync.Mutex
	r          io.Reader
	timer      *time.Timer
	idle       time.Duration
	stalled    *StallError
	n          int64 // bytes read
	err        error // r's read error other than io.EOF
	terminated bool
	done       chan struct{}
	once       sync.Once
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.terminated {
		return 0, b.stalled
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	switch {
	case err == io.EOF:
		b.timer.Reset(commitWait)
		b.stalled.Idle = commitWait
	case n > 0:
		b.timer.Reset(b.idle)
	}
	return n, err
}

func (b *uploadBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}

// terminate ends the reads of r (waiting for one under way) and returns
// how many bytes were read, and r's read error.
func (b *uploadBody) terminate() (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.terminated = true
	return b.n, b.err
}
