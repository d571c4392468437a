package publisher

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

// BenchmarkMirror copies a 3-layer image (3 × 32 MiB of random, so
// incompressible, data) from one registry to a fresh one, with agentforge's
// Mirror (no verification) and, in the same run, with crane copy when
// $CRANE names a crane binary (an absolute path) (make bench installs it
// into bin/). The registries are in-process distribution/v3 on loopback:
// directly (loopback), and behind proxies that delay every request by
// 20 ms (rtt20ms: what each round trip costs over a far link, such as a
// domestic mirror's).
func BenchmarkMirror(b *testing.B) {
	src := registrytest.New(b, registrytest.Options{})
	layout := ocitest.Layout(b, b.TempDir(), "bench", ocitest.Options{Layers: 3, Size: 32 << 20, Seed: 7})
	seed, err := Publish(context.Background(), layout, []Destination{dest(b, src.Host+"/bench/app:1")},
		Options{Hosts: registrytest.Open(b, remote.Registries{Insecure: []string{src.Host}}), WorkDir: b.TempDir(), Verify: VerifyNone})
	if err != nil {
		b.Fatal(err)
	}
	size := int64(0)
	for _, d := range seed.Destinations {
		size = d.BytesPushed
	}
	for _, link := range []struct {
		name    string
		latency time.Duration
	}{{"loopback", 0}, {"rtt20ms", 20 * time.Millisecond}} {
		// host is where a registry is reached over the link.
		host := func(r *registrytest.Registry) string {
			if link.latency == 0 {
				return r.Host
			}
			p := registrytest.NewProxy(b, r)
			p.Set(registrytest.Faults{Latency: link.latency})
			return p.Host
		}
		from := host(src)
		b.Run(link.name+"/agentforge", func(b *testing.B) {
			ref, err := oci.ParseReference("docker://"+from+"/bench/app:1", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				to := host(registrytest.New(b, registrytest.Options{}))
				opts := Options{Hosts: registrytest.Open(b, remote.Registries{Insecure: []string{from, to}}), WorkDir: b.TempDir(), Verify: VerifyNone}
				b.StartTimer()
				if _, err := Mirror(context.Background(), ref, []Destination{dest(b, to+"/bench/app:1")}, MirrorOptions{Options: opts}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(link.name+"/crane", func(b *testing.B) {
			crane := os.Getenv("CRANE")
			if crane == "" {
				b.Skip("set CRANE to a crane binary to compare (make bench does)")
			}
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				to := host(registrytest.New(b, registrytest.Options{}))
				b.StartTimer()
				out, err := exec.Command(crane, "copy", "--insecure", "--jobs", strconv.Itoa(runtime.GOMAXPROCS(0)*2), from+"/bench/app:1", to+"/bench/app:1").CombinedOutput()
				if err != nil {
					b.Fatalf("crane copy: %v\n%s", err, out)
				}
			}
		})
	}
}

func dest(t testing.TB, s string, tags ...string) Destination {
	t.Helper()
	d, err := ParseDestination(s, tags)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
