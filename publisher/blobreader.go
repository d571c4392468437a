package publisher

import (
	"context"
	"fmt"
	"hash"
	"io"

	"github.com/agentforge/agentforge/images/progress"
)

// blobReader is a blob's source as its upload reads it. Every byte is
// hashed and shown on the bar once, however often the upload reads it: an
// upload that goes on after a break reads the blob again from the byte the
// registry has (remote.Rereader), which may be before the last byte read.
// Those bytes, read again, are not hashed again: the registry checks the
// digest of all it has when the upload ends.
type blobReader struct {
	open func(ctx context.Context, offset int64) (io.ReadCloser, error)
	rc   io.ReadCloser // read now
	pos  int64         // the blob's offset of rc's next byte
	n    int64         // bytes hashed: the blob's first n
	h    hash.Hash
	bar  progress.Bar
	eof  bool // the source ended at n
}

func (b *blobReader) Read(p []byte) (int, error) {
	k, err := b.rc.Read(p)
	if end := b.pos + int64(k); end > b.n {
		fresh := p[k-int(end-b.n) : k]
		b.h.Write(fresh)
		b.bar.Add(len(fresh))
		b.n = end
	}
	b.pos += int64(k)
	if err == io.EOF && b.pos == b.n {
		b.eof = true
	}
	return k, err
}

// Reread implements remote.Rereader: the source is opened again at offset.
func (b *blobReader) Reread(ctx context.Context, offset int64) error {
	if offset < 0 || offset > b.n {
		return fmt.Errorf("read again from byte %d: %d read", offset, b.n)
	}
	b.rc.Close()
	rc, err := b.open(ctx, offset)
	if err != nil {
		b.rc = failedBody{err}
		return err
	}
	b.rc, b.pos, b.eof = rc, offset, false
	return nil
}

func (b *blobReader) Close() error { return b.rc.Close() }

// failedBody is a source that could not be opened again.
type failedBody struct{ err error }

func (f failedBody) Read([]byte) (int, error) { return 0, f.err }
func (failedBody) Close() error               { return nil }
