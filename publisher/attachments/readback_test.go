package attachments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// A read-back judges what the registry serves, read and hashed, not a
// HEAD's Docker-Content-Digest: a cache in front of the registry (or a
// registry that lies) can answer the HEAD of a signature tag with the
// digest just written while a pull gets another manifest, and the
// signature would be reported written while nobody can read it.
func TestReadBack_JudgesTheServedBytesNotAHead(t *testing.T) {
	reg := registrytest.New(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, reg)
	o := attachments.Options{Hosts: registrytest.Hosts(t, reg, proxy)}
	old := registrytest.Push(t, o.Hosts, reg.Host+"/team/agent:sha256-x.sig", ocitest.Options{Layers: 1, Seed: 51})
	ours := registrytest.Push(t, o.Hosts, reg.Host+"/team/agent:other", ocitest.Options{Layers: 1, Seed: 52})
	ref, err := reference.ParseNormalizedNamed(proxy.Host + "/team/agent:sha256-x.sig")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		head   map[string]string // the proxy's lying HEADs
		want   digest.Digest
		serves digest.Digest // "" for no error
	}{
		{"the tag serves what was written", nil, old.Digest(), ""},
		{"the tag serves another manifest", nil, ours.Digest(), old.Digest()},
		{"a HEAD says what was written, a pull gets another", map[string]string{"sha256-x.sig": ours.Digest().String()}, ours.Digest(), old.Digest()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Set(registrytest.Faults{HeadDigest: tc.head})
			err := attachments.ReadBack(context.Background(), o.Uncached(), ref, tc.want)
			var replaced *attachments.ReplacedError
			switch {
			case tc.serves == "" && err != nil:
				t.Errorf("ReadBack: %v, want no error", err)
			case tc.serves != "" && (!errors.As(err, &replaced) || replaced.Serves != tc.serves):
				t.Errorf("ReadBack: %v, want a ReplacedError serving %s", err, tc.serves)
			}
		})
	}
}
