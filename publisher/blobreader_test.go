package publisher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
)

// countBar counts what a progress bar was told.
type countBar struct{ n int }

func (b *countBar) Add(n int) { b.n += n }
func (*countBar) Done(error)  {}

// A blob read again from an earlier offset is hashed and counted once: the
// digest, the count and the end are the blob's, whatever was read twice.
// It cannot go back past what was read, and a source that cannot be opened
// again makes the next read fail with its error.
func TestBlobReader_HashesEachByteOnce(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789"), 1000)
	open := func(_ context.Context, offset int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob[offset:])), nil
	}
	for _, tc := range []struct {
		name  string
		steps []int64 // pairs: read up to the first offset, then go back to the second
	}{
		{name: "straight through", steps: nil},
		{name: "back to 0 after 4000", steps: []int64{4000, 0}},
		{name: "back a little twice", steps: []int64{4000, 3500, 6000, 2000}},
		{name: "back to where it was", steps: []int64{4000, 4000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, _ := open(context.Background(), 0)
			bar := &countBar{}
			b := &blobReader{rc: rc, h: sha256.New(), bar: bar, open: open}
			for i := 0; i+1 < len(tc.steps); i += 2 {
				if _, err := io.CopyN(io.Discard, b, tc.steps[i]-b.pos); err != nil {
					t.Fatal(err)
				}
				if err := b.Reread(context.Background(), tc.steps[i+1]); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := io.Copy(io.Discard, b); err != nil {
				t.Fatal(err)
			}
			if got := digest.NewDigest(digest.SHA256, b.h); got != digest.FromBytes(blob) || b.n != int64(len(blob)) || !b.eof || bar.n != len(blob) {
				t.Errorf("digest %s, %d bytes, eof %t, bar %d; want the blob's %s, %d", got, b.n, b.eof, bar.n, digest.FromBytes(blob), len(blob))
			}
		})
	}

	rc, _ := open(context.Background(), 0)
	b := &blobReader{rc: rc, h: sha256.New(), bar: &countBar{}, open: open}
	io.CopyN(io.Discard, b, 100)
	if err := b.Reread(context.Background(), 101); err == nil {
		t.Error("read again from past what was read: no error")
	}
	gone := errors.New("source gone")
	b.open = func(context.Context, int64) (io.ReadCloser, error) { return nil, gone }
	if err := b.Reread(context.Background(), 50); !errors.Is(err, gone) {
		t.Errorf("Reread: %v, want the source's error", err)
	}
	if _, err := b.Read(make([]byte, 10)); !errors.Is(err, gone) {
		t.Errorf("Read after a failed Reread: %v, want the source's error", err)
	}
	if b.Close() != nil {
		t.Error("Close after a failed Reread failed")
	}
}
