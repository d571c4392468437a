package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/oci/layout"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// Layer is one layer of an image as its manifest and config describe it.
type Layer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// IsLocal reports whether s names an image in local storage (no oci: or
// docker:// transport), so that a caller knows to open the store.
func IsLocal(s string) bool {
	return !strings.HasPrefix(s, "oci:") && !strings.HasPrefix(s, "docker://")
}

// ParseReference turns a user's image reference into an image reference:
//
//	oci:DIR[:tag]                 an OCI layout
//	docker://host/repo[:tag|@dig] a registry
//	containers-storage:NAME       local storage (the prefix is optional)
//	NAME[:tag] or an image ID     local storage; short names are looked up
//	                              as given and under localhost/
//
// A malformed reference is errs.ErrInput; a local image that does not exist
// is errs.ErrNotFound.
func ParseReference(s string, store storage.Store) (types.ImageReference, error) {
	switch {
	case strings.HasPrefix(s, "oci:"):
		ref, err := layout.ParseReference(strings.TrimPrefix(s, "oci:"))
		if err != nil {
			return nil, errs.Inputf("reference %q: %w", s, err)
		}
		dir, _, _ := strings.Cut(ref.StringWithinTransport(), ":")
		if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
			return nil, errs.NotFoundf("reference %q: no OCI layout there (%v)", s, err)
		}
		return ref, nil
	case strings.HasPrefix(s, "docker://"):
		ref, err := docker.ParseReference(strings.TrimPrefix(s, "docker:"))
		if err != nil {
			return nil, errs.Inputf("reference %q: %w", s, err)
		}
		if err := CheckPort(reference.Domain(ref.DockerReference())); err != nil {
			return nil, errs.Inputf("reference %q: %w", s, err)
		}
		return ref, nil
	}
	name := strings.TrimPrefix(s, "containers-storage:")
	if store == nil {
		return nil, errs.Inputf("reference %q: local storage is not open", s)
	}
	img, err := LocalImage(store, name)
	if err != nil {
		return nil, err
	}
	ref, err := istorage.Transport.NewStoreReference(store, nil, img.ID)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", s, err)
	}
	return ref, nil
}

// CheckPort checks the port of a registry host[:port], if it has one.
func CheckPort(host string) error {
	i := strings.LastIndex(host, ":")
	if i < 0 || strings.HasSuffix(host, "]") {
		return nil
	}
	n, err := strconv.Atoi(host[i+1:])
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", host[i+1:])
	}
	return nil
}

// HasRegistryHost reports whether the first path component of a reference
// names a registry host (it has a dot or a port, or is localhost) rather
// than a Docker Hub namespace.
func HasRegistryHost(ref string) bool {
	first, _, found := strings.Cut(ref, "/")
	if !found {
		return false
	}
	host := first
	if h, _, ok := strings.Cut(first, ":"); ok {
		host = h
	}
	return strings.Contains(first, ".") || strings.Contains(first, ":") || host == "localhost"
}

// LocalImage finds an image in local storage by ID, ID prefix or name,
// trying short names under localhost/ (where agentforge tags what it
// builds) and with :latest when no tag is given. A missing image is
// errs.ErrNotFound.
func LocalImage(store storage.Store, name string) (*storage.Image, error) {
	candidates := []string{name} // an ID, an ID prefix, or a name as stored
	if named, err := reference.ParseNormalizedNamed(name); err == nil {
		// What agentforge builds is stored under localhost/; what is pulled
		// under its full name (docker.io/library/…).
		full := reference.TagNameOnly(named).String()
		if !HasRegistryHost(name) {
			candidates = append(candidates, "localhost/"+strings.TrimPrefix(full, "docker.io/library/"))
		}
		candidates = append(candidates, full)
	}
	for _, c := range candidates {
		if img, err := store.Image(c); err == nil {
			return img, nil
		}
	}
	return nil, errs.NotFoundf("image %q not found in local storage %s", name, store.GraphRoot())
}

// Layers reads the manifest digest and layer list of the image at ref.
func Layers(ctx context.Context, sys *types.SystemContext, ref types.ImageReference) (string, []Layer, error) {
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", Name(ref), err)
	}
	defer src.Close()
	m, err := readManifest(ctx, src, nil, Name(ref))
	if err != nil {
		return "", nil, err
	}
	if m.index != nil {
		return "", nil, errs.Inputf("%s: %w", Name(ref), ErrIndex)
	}
	if err := m.readConfig(ctx, src); err != nil {
		return "", nil, err
	}
	return m.digest.String(), m.layers, nil
}

// Manifest reads the top-level manifest of ref (a registry's 404 is
// errs.ErrNotFound: the reference names nothing). When ref names a digest
// (repo@sha256:…), or is an OCI layout (whose index.json names one), the
// bytes are checked against it before they are returned: a source serving
// another manifest is an *errs.IntegrityError.
func Manifest(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) ([]byte, error) {
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, notFound(fmt.Errorf("open %s: %w", Name(ref), err))
	}
	defer src.Close()
	raw, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, notFound(fmt.Errorf("read manifest of %s: %w", Name(ref), err))
	}
	var want digest.Digest
	if dref := ref.DockerReference(); dref != nil {
		if d, ok := dref.(reference.Digested); ok {
			want = d.Digest()
		}
	}
	if ref.Transport().Name() == "oci" {
		if want, err = layoutDigest(ref); err != nil {
			return nil, err
		}
	}
	return checkManifest(raw, want, Name(ref))
}

// RegistryManifest is Manifest for a registry reference (by tag or
// digest), read through c, a client for its repository: no c/image
// client (and its ping) is opened for it, and c's connections and token
// serve the caller's next reads.
func RegistryManifest(ctx context.Context, c *remote.Client, named reference.Named) ([]byte, error) {
	ref := "latest"
	var want digest.Digest
	if d, ok := named.(reference.Digested); ok {
		ref, want = d.Digest().String(), d.Digest()
	} else if t, ok := named.(reference.Tagged); ok {
		ref = t.Tag()
	}
	raw, err := c.Manifest(ctx, ref, remote.MaxManifest)
	if err != nil {
		return nil, notFound(fmt.Errorf("read manifest of %s: %w", named, err))
	}
	return checkManifest(raw, want, named.String())
}

// checkManifest returns raw if it is the manifest want names (any, when
// want is empty), an *errs.IntegrityError if not.
func checkManifest(raw []byte, want digest.Digest, name string) ([]byte, error) {
	if got := digest.FromBytes(raw); want != "" && got != want {
		return nil, &errs.IntegrityError{What: "manifest of " + name, Check: "digest", Expected: want.String(), Actual: got.String()}
	}
	return raw, nil
}

// tagRE is the distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// CheckTag checks that t is a tag a registry takes: up to 128 letters,
// digits, underscores, dots and dashes, not starting with a dot or dash.
// A bad one is errs.ErrInput.
func CheckTag(t string) error {
	if !tagRE.MatchString(t) {
		return errs.Inputf("tag %q: want up to 128 letters, digits, _ . - (not starting with . or -)", t)
	}
	return nil
}

// LocalTags are the tags a local image carries (under any repository),
// sorted; none when name is not in store.
func LocalTags(store storage.Store, name string) []string {
	img, err := LocalImage(store, strings.TrimPrefix(name, "containers-storage:"))
	if err != nil {
		return nil
	}
	var tags []string
	for _, n := range img.Names {
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			if t, ok := named.(reference.Tagged); ok && !slices.Contains(tags, t.Tag()) {
				tags = append(tags, t.Tag())
			}
		}
	}
	slices.Sort(tags)
	return tags
}

// LayoutTags is the tag an oci:DIR:TAG reference names, if any.
func LayoutTags(ref string) []string {
	if _, tag, ok := strings.Cut(strings.TrimPrefix(ref, "oci:"), ":"); ok && tag != "" {
		return []string{tag}
	}
	return nil
}
