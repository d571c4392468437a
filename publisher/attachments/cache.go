package attachments

import (
	"sync"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

// maxCachedBlob is the largest blob readCache keeps (signatures and
// attestations are a few KiB; a large referrer is streamed, not kept).
const maxCachedBlob = 1 << 20

// readCache remembers what was read from one repository during a copy to
// several destinations (manifests by tag or digest, small blobs, referrer
// listings), so that each is asked once: concurrent readers of one key
// wait for the first. A nil *readCache remembers nothing.
type readCache struct {
	repo string

	mu        sync.Mutex
	manifests map[string]*once[[]byte]
	blobs     map[digest.Digest]*once[[]byte]
	referrers map[digest.Digest]*once[listing]
}

// listing is a referrers API answer.
type listing struct {
	list      []imgspecv1.Descriptor
	supported bool
}

// once is one value computed once, by the first caller.
type once[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func newReadCache(repo reference.Named) *readCache {
	return &readCache{repo: reference.TrimNamed(repo).String(),
		manifests: map[string]*once[[]byte]{}, blobs: map[digest.Digest]*once[[]byte]{}, referrers: map[digest.Digest]*once[listing]{}}
}

// get returns m[key], computing it with fn unless another caller has or
// is; cache is false to bypass m.
func get[K comparable, T any](mu *sync.Mutex, m map[K]*once[T], key K, cache bool, fn func() (T, error)) (T, error) {
	if !cache {
		return fn()
	}
	mu.Lock()
	e, ok := m[key]
	if !ok {
		e = &once[T]{done: make(chan struct{})}
		m[key] = e
	}
	mu.Unlock()
	if !ok {
		e.val, e.err = fn()
		close(e.done)
	}
	<-e.done
	return e.val, e.err
}

func (c *readCache) holds(repo reference.Named) bool {
	return c != nil && reference.TrimNamed(repo).String() == c.repo
}

func (c *readCache) manifest(ref reference.Named, fn func() ([]byte, error)) ([]byte, error) {
	if !c.holds(ref) {
		return fn()
	}
	return get(&c.mu, c.manifests, ref.String(), true, fn)
}

func (c *readCache) blob(repo reference.Named, d digest.Digest, size int64, fn func() ([]byte, error)) ([]byte, error) {
	if !c.holds(repo) {
		return fn()
	}
	return get(&c.mu, c.blobs, d, size <= maxCachedBlob, fn)
}

func (c *readCache) referrerList(repo reference.Named, d digest.Digest, fn func() (listing, error)) (listing, error) {
	if !c.holds(repo) {
		return fn()
	}
	return get(&c.mu, c.referrers, d, true, fn)
}
