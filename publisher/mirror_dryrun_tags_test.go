package publisher

import (
	"context"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"go.podman.io/image/v5/oci/layout"
)

// A dry run's destination that failed lists no tag, as a failed push's
// report does (Result.Tags): nothing names the digest there because of it.
func TestMirror_DryRunFailureListsNoTag(t *testing.T) {
	src := registrytest.New(t, registrytest.Options{})
	locked := registrytest.New(t, registrytest.Options{Auth: true})
	regs := remote.Registries{Insecure: []string{src.Host, locked.Host}} // no credentials for locked
	ctx := context.Background()
	layoutRef, err := layout.NewReference(writeIndexLayout(t), "multi")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, layoutRef, []Destination{dest(t, src.Host+"/library/tool:2.0")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	srcRef := mustRef(t, "docker://"+src.Host+"/library/tool:2.0")
	plan, err := Mirror(ctx, srcRef, []Destination{dest(t, locked.Host+"/mirror/tool", "2.0")}, MirrorOptions{Options: Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir()}, DryRun: true})
	if err == nil || plan == nil || len(plan.Destinations) != 1 || plan.Destinations[0].Error == "" {
		t.Fatalf("want the locked destination failed: %+v %v", plan, err)
	}
	if tags := plan.Destinations[0].Tags; tags == nil || len(tags) != 0 {
		t.Errorf("tags %q (nil %t), want none listed", tags, tags == nil)
	}
}
