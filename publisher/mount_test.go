package publisher

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"

	"github.com/agentforge/agentforge/publisher/registrytest"
)

// A second repository on the same registry gets the blobs by a
// cross-repository mount (POST …/blobs/uploads/?mount=…&from=…), not by
// sending them again.
func TestPublish_CrossRepositoryMount(t *testing.T) {
	img := buildLocal(t, "hello")
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	opts := Options{Hosts: registrytest.Open(t, remote.Registries{Insecure: []string{proxy.Host}}), WorkDir: t.TempDir(), Verify: VerifyFast}
	if _, err := Publish(context.Background(), img.ref, []Destination{dest(t, proxy.Host+"/team-a/busybox:1")}, opts); err != nil {
		t.Fatal(err)
	}
	before := len(proxy.Log())
	rep, err := Publish(context.Background(), img.ref, []Destination{dest(t, proxy.Host+"/team-b/busybox:1")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Destinations[0]
	if d.BlobsPushed != 0 || d.BytesPushed != 0 || d.BlobsSkipped != 4 {
		t.Errorf("second repository: %+v", d)
	}
	uploads := 0
	for _, e := range proxy.Log()[before:] {
		if e.Method == "PUT" && strings.Contains(e.Path, "/team-b/busybox/blobs/uploads/") {
			uploads++
		}
	}
	if uploads != 0 {
		t.Errorf("%d blobs were uploaded again instead of mounted", uploads)
	}
}

// A mirror between two repositories of one registry (a promotion,
// staging to prod) mounts every blob from the source repository (POST
// …?mount=&from=, 201) instead of having it sent, from an empty work dir,
// as a builder pod has, with and without credentials.
func TestMirror_SameRegistryMounts(t *testing.T) {
	for _, opts := range []registrytest.Options{{}, {Auth: true}} {
		t.Run(fmt.Sprintf("auth %v", opts.Auth), func(t *testing.T) {
			reg := registrytest.New(t, opts)
			proxy := registrytest.NewProxy(t, reg)
			regs := remote.Registries{Insecure: []string{proxy.Host}}
			if opts.Auth { // the registry's credentials, for the proxy in front of it
				regs.AuthFile = registrytest.WriteAuthFile(t, map[string][2]string{proxy.Host: {reg.User, reg.Password}})
			}
			hosts := registrytest.Open(t, regs)
			ctx := context.Background()
			registrytest.Push(t, hosts, proxy.Host+"/staging/app:1", ocitest.Options{Layers: 3, Size: 4096, Seed: 17})
			before := len(proxy.Log())
			rep, err := Mirror(ctx, mustRef(t, "docker://"+proxy.Host+"/staging/app:1"), []Destination{dest(t, proxy.Host+"/prod/app", "1")},
				MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyFull}})
			if err != nil {
				t.Fatal(err)
			}
			if d := rep.Destinations[0]; d.BlobsPushed != 0 || d.BytesPushed != 0 || d.BlobsSkipped != 4 || !d.Verified {
				t.Errorf("same registry: %+v", d)
			}
			mounts := 0
			for _, e := range proxy.Log()[before:] {
				if e.Method == http.MethodPut && strings.Contains(e.Path, "/prod/app/blobs/uploads/") || e.Method == http.MethodPatch {
					t.Errorf("blob sent instead of mounted: %s %s", e.Method, e.Path)
				}
				if q, _ := url.ParseQuery(e.Query); e.Method == http.MethodPost && q.Get("from") == "staging/app" && e.Status == http.StatusCreated {
					mounts++
				}
			}
			if mounts != 4 {
				t.Errorf("%d blobs mounted from staging/app, want 4 (the config and 3 layers)", mounts)
			}
		})
	}
}

// A registry that does not mount (it answers with an upload session) gets
// the blobs sent, and is not asked again for each of them: at most the
// first few, in flight together, ask.
func TestMirror_MountsRefusedAreNotAskedAgain(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	hosts := registrytest.Hosts(t, reg, proxy)
	registrytest.Push(t, hosts, proxy.Host+"/staging/app:1", ocitest.Options{Layers: 11, Size: 1024, Seed: 19})
	proxy.Set(registrytest.Faults{RefuseMounts: true})
	before := len(proxy.Log())
	rep, err := Mirror(context.Background(), mustRef(t, "docker://"+proxy.Host+"/staging/app:1"), []Destination{dest(t, proxy.Host+"/prod/app", "1")},
		MirrorOptions{Options: Options{Hosts: hosts, WorkDir: t.TempDir(), Verify: VerifyFull}})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Destinations[0]; d.BlobsPushed != 12 || !d.Verified {
		t.Errorf("mounts refused: %+v, want the 12 blobs sent", d)
	}
	asked := 0
	for _, e := range proxy.Log()[before:] {
		if q, _ := url.ParseQuery(e.Query); e.Method == http.MethodPost && q.Has("mount") {
			asked++
		}
	}
	if asked == 0 || asked > 4 {
		t.Errorf("%d mounts asked for 12 blobs, want 1 to 4 (those in flight when the first was refused)", asked)
	}
}
