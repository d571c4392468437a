package oci_test

import (
	"sync"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
)

type recorded struct {
	mu           sync.Mutex
	names        []string
	bytes        map[string]int
	ended        map[string]error
	ends, failed int
}

func (r *recorded) Start(what string, total int64) progress.Bar {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, what)
	return &recordedBar{r: r, what: what}
}

type recordedBar struct {
	r    *recorded
	what string
}

func (b *recordedBar) Add(n int) { b.r.mu.Lock(); b.r.bytes[b.what] += n; b.r.mu.Unlock() }
func (b *recordedBar) Done(err error) {
	b.r.mu.Lock()
	b.r.ended[b.what] = err
	b.r.ends++
	if err != nil {
		b.r.failed++
	}
	b.r.mu.Unlock()
}

// c/image reports cumulative offsets (see copy/progress_channel.go): each
// blob's bar counts its bytes once, ends on Done, and a blob the copy
// never finished ends as failed when the copy returns.
func TestCopyProgress(t *testing.T) {
	rec := &recorded{bytes: map[string]int{}, ended: map[string]error{}}
	ch, done := oci.CopyProgress(rec, "pull")
	a := types.BlobInfo{Digest: digest.FromString("a"), Size: 300}
	b := types.BlobInfo{Digest: digest.FromString("b"), Size: 100}
	for _, p := range []types.ProgressProperties{
		{Event: types.ProgressEventNewArtifact, Artifact: a},
		{Event: types.ProgressEventNewArtifact, Artifact: b},
		{Event: types.ProgressEventRead, Artifact: a, Offset: 100, OffsetUpdate: 100},
		{Event: types.ProgressEventRead, Artifact: b, Offset: 40, OffsetUpdate: 40},
		{Event: types.ProgressEventRead, Artifact: a, Offset: 250, OffsetUpdate: 150},
		{Event: types.ProgressEventDone, Artifact: a, Offset: 300, OffsetUpdate: 50},
		{Event: types.ProgressEventSkipped, Artifact: types.BlobInfo{Digest: digest.FromString("c")}},
	} {
		ch <- p
	}
	done()
	aName, bName := "pull "+oci.Short(a.Digest.String()), "pull "+oci.Short(b.Digest.String())
	if len(rec.names) != 2 || rec.names[0] != aName || rec.names[1] != bName {
		t.Fatalf("bars %q, want %q and %q", rec.names, aName, bName)
	}
	if rec.bytes[aName] != 300 || rec.bytes[bName] != 40 {
		t.Errorf("counted %d and %d bytes, want 300 and 40", rec.bytes[aName], rec.bytes[bName])
	}
	if err, ok := rec.ended[aName]; !ok || err != nil {
		t.Errorf("finished blob ended with %v (ended: %v)", err, ok)
	}
	if rec.ended[bName] == nil {
		t.Errorf("a blob the copy never finished ended as completed")
	}

	// The same digest twice (c/image copies equal layers twice): two
	// bars, each ended by its own Done.
	rec = &recorded{bytes: map[string]int{}, ended: map[string]error{}}
	ch, done = oci.CopyProgress(rec, "push")
	for _, p := range []types.ProgressProperties{
		{Event: types.ProgressEventNewArtifact, Artifact: a},
		{Event: types.ProgressEventNewArtifact, Artifact: a},
		{Event: types.ProgressEventDone, Artifact: a, Offset: 300},
		{Event: types.ProgressEventDone, Artifact: a, Offset: 300},
	} {
		ch <- p
	}
	done()
	if len(rec.names) != 2 || rec.ends != 2 || rec.failed != 0 || rec.bytes["push "+oci.Short(a.Digest.String())] != 600 {
		t.Errorf("two copies of one digest: bars %q, %d ended (%d failed), %d bytes", rec.names, rec.ends, rec.failed, rec.bytes["push "+oci.Short(a.Digest.String())])
	}

	if ch, done := oci.CopyProgress(nil, "pull"); ch != nil {
		t.Errorf("a nil Reporter gave a channel: copy.Image would report to nobody and block")
	} else {
		done()
	}
}

func TestShort(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef0123": "sha256:0123456789ab",
		"sha256:0123":                 "sha256:0123",
		"latest":                      "latest",
	} {
		if got := oci.Short(in); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}
