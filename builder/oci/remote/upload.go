package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
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
// At most size+1 bytes are read: a source that sends more fails the
// upload with an *errs.IntegrityError. An upload the registry stops
// taking for the client's idle time is abandoned with a *StallError. A
// session the registry lost (404) or whose token expired (401) is an
// *Error with Restart set: temporary, the whole upload may start again
// (its body cannot be sent twice).
func (c *Client) PutBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	err := c.putBlob(ctx, d, size, r)
	return c.secrets.Error(err)
}

func (c *Client) putBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
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
	authz := resp.Request.Header.Get("Authorization")
	loc, err := c.location(resp)
	if err != nil {
		return err
	}
	chunked := c.chunked.Load()
	method := http.MethodPut
	if chunked {
		method = http.MethodPatch
	} else {
		loc = withDigest(loc, d)
	}
	resp, answer, err = c.sendBody(ctx, method, loc, authz, d, size, r)
	if err != nil {
		return err
	}
	if chunked && resp.StatusCode == http.StatusAccepted {
		// The body is there; the session ends with the digest.
		if loc, err = c.location(resp); err != nil {
			return err
		}
		loc = withDigest(loc, d)
		// The registry stores the blob now (moves it into S3): it has
		// commitWait to answer, as after a body.
		cctx, cancel := context.WithTimeout(ctx, commitWait)
		defer cancel()
		if resp, err = c.send(cctx, c.uploads, request{method: http.MethodPut, url: loc, authz: authz}); err != nil {
			return err
		}
		answer, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		method = http.MethodPut
	}
	if resp.StatusCode != http.StatusCreated {
		e := c.statusError(method, loc, resp, answer)
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			// A lost session (BLOB_UPLOAD_UNKNOWN: the spec says the
			// upload MUST restart), or a registry that takes the body
			// only in a PATCH (405; Artifactory 6 answers 404
			// BLOB_UNKNOWN).
			if !strings.Contains(string(answer), "BLOB_UPLOAD_UNKNOWN") {
				c.chunked.Store(true)
			}
			e.Restart = true
		case http.StatusUnauthorized:
			c.forgetPush()
			e.Restart = true
		}
		return e
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return &errs.IntegrityError{What: "blob " + d.String() + " written to " + c.host, Check: "Docker-Content-Digest", Expected: d.String(), Actual: got}
	}
	return nil
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

// sendBody sends r, size bytes (-1: not known), as the body of method to
// u, and returns the answer with the start of its body. The body is
// abandoned (a *StallError) when the transport takes nothing of it for
// the idle time, or when the registry does not answer for commitWait after
// the last byte; r is read by no one once sendBody returns.
func (c *Client) sendBody(ctx context.Context, method string, u *url.URL, authz string, d digest.Digest, size int64, r io.Reader) (*http.Response, []byte, error) {
	if size >= 0 && size < math.MaxInt64 {
		r = io.LimitReader(r, size+1)
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
	if size == 0 {
		body.Close() // sent as http.NoBody: the transport never sees it
	}
	resp, err := c.send(ctx, c.uploads, request{method: method, url: u, contentType: "application/octet-stream", stream: body, length: size, authz: authz})
	var answer []byte
	if err == nil {
		answer, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
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
	n := body.terminate()
	if size >= 0 && n > size {
		return nil, nil, &errs.IntegrityError{What: "blob " + d.String() + " to upload", Check: "size", Expected: fmt.Sprintf("%d bytes", size), Actual: "more"}
	}
	if err != nil {
		var stall *StallError
		if errors.As(context.Cause(ctx), &stall) {
			return nil, nil, stall
		}
		return nil, nil, err
	}
	return resp, answer, nil
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
// how many bytes were read.
func (b *uploadBody) terminate() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.terminated = true
	return b.n
}
