package oci

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentforge/agentforge/images/progress"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
)

// CopyProgress shows a copy.Image's blobs on r, one bar per blob named
// verb and the blob's short digest ("compress sha256:ab12…"). Pass ch as
// copy.Options.Progress (with ProgressInterval, see CopyProgressInterval)
// and call done once copy.Image has returned. A nil r
// gives a nil channel: copy.Image then reports nothing.
func CopyProgress(r progress.Reporter, verb string) (ch chan types.ProgressProperties, done func()) {
	if r == nil {
		return nil, func() {}
	}
	ch = make(chan types.ProgressProperties)
	finished := make(chan struct{})
	type running struct {
		bar  progress.Bar
		seen uint64
	}
	go func() {
		defer close(finished)
		// c/image does not merge equal layers: one digest may be copied
		// twice, so each digest has a queue of bars, oldest first.
		bars := map[digest.Digest][]*running{}
		for p := range ch {
			d := p.Artifact.Digest
			switch p.Event {
			case types.ProgressEventNewArtifact:
				bars[d] = append(bars[d], &running{bar: r.Start(fmt.Sprintf("%s %s", verb, Short(d.String())), p.Artifact.Size)})
			case types.ProgressEventRead, types.ProgressEventDone:
				if len(bars[d]) == 0 {
					continue
				}
				b := bars[d][0]
				if p.Offset > b.seen {
					b.bar.Add(int(p.Offset - b.seen))
					b.seen = p.Offset
				}
				if p.Event == types.ProgressEventDone {
					b.bar.Done(nil)
					bars[d] = bars[d][1:]
				}
			}
		}
		for _, queue := range bars {
			for _, b := range queue {
				b.bar.Done(errors.New("copy ended before this blob did"))
			}
		}
	}()
	return ch, func() {
		close(ch)
		<-finished
	}
}

// CopyProgressInterval is how often copy.Image reports a blob's progress
// on CopyProgress's channel.
const CopyProgressInterval = 200 * time.Millisecond

// Short is a digest cut to its algorithm and 12 hex digits, for progress
// lines and bars.
func Short(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}
