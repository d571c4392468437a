package publisher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/sirupsen/logrus"
)

// A staging folder left by a run that died (killed, or a second Ctrl-C,
// which skips every cleanup) is removed by the next stage in that work
// dir: one held by a running stage, one younger than a run needs to take
// its lock, and a staged layout are kept.
func TestRemoveAbandoned(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	mk := func(name string, at time.Time) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, at, at); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	abandoned := mk("aa"+partialMark+"1", old)
	running := mk("bb"+partialMark+"2", old)
	young := mk("cc"+partialMark+"3", time.Now())
	staged := mk("dd", old)
	release := holdPartial(running)
	defer release()
	removeAbandoned(root, abandonedAge, logrus.New())
	for dir, want := range map[string]bool{abandoned: false, running: true, young: true, staged: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: there %t, want %t", filepath.Base(dir), err == nil, want)
		}
	}
}

// Publish removes them: a stage in a work dir where a killed run left its
// folder leaves only the staged layout.
func TestPublish_RemovesAbandonedStaging(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	work := t.TempDir()
	left := filepath.Join(work, "staging", "0123"+partialMark+"999")
	if err := os.MkdirAll(filepath.Join(left, "blobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(left, old, old)
	src := ocitest.Layout(t, t.TempDir(), "1", ocitest.Options{Layers: 1, Uncompressed: true, Seed: 77})
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{reg.Host}}), WorkDir: work, Verify: VerifyNone}
	if _, err := Publish(context.Background(), src, []Destination{dest(t, reg.Host+"/agents/tool:1")}, opts); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(work, "staging"))
	if len(entries) != 1 || strings.Contains(entries[0].Name(), partialMark) {
		t.Errorf("staging holds %v, want the staged layout alone", entries)
	}
}
