package sbom

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ciimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
)

// Default limits on what is read from an image into memory.
const (
	// DefaultMaxFileSize caps one file read from the image (a dpkg status
	// file of a large Ubuntu desktop is a few MB).
	DefaultMaxFileSize = 64 << 20
	// DefaultMaxTotalSize caps all files held at once.
	DefaultMaxTotalSize = 256 << 20
	// maxEntries caps how many files and dist-info folders are tracked.
	maxEntries = 100000
	// maxKeyringSize caps an apt keyring read for the update check
	// (Debian's archive keyring is 55 kB): a larger one is left out, not
	// an error, so that it cannot fail an SBOM, which has no use for it.
	maxKeyringSize = 4 << 20
)

// ErrTooLarge is wrapped by the error returned when a file in the image
// is over Input.MaxFileSize, or all of them over Input.MaxTotalSize.
var ErrTooLarge = errors.New("too large")

const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// wanted reports whether the file at p (clean, relative to the root) is
// one the SBOM or the inventory reads.
func wanted(p string) bool {
	switch p {
	case "var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release":
		return true
	}
	dir, _ := path.Split(p)
	return dir == "var/lib/dpkg/status.d/" || aptKeyring(p)
}

// aptKeyring reports whether the file at p is one of the keyrings apt in
// the image trusts to sign its archives' indexes: /etc/apt/trusted.gpg and
// trusted.gpg.d's *.gpg and *.asc (apt's defaults, see apt-secure(8)), and
// the distribution's archive keyring, which its default sources name with
// Signed-By (/usr/share/keyrings/debian-archive-keyring.pgp on trixie,
// ubuntu-archive-keyring.gpg on noble). Other keyrings in that folder, as
// the removed-keys one, are not trusted.
func aptKeyring(p string) bool {
	dir, base := path.Split(p)
	switch dir {
	case "etc/apt/":
		return base == "trusted.gpg"
	case "etc/apt/trusted.gpg.d/":
		return strings.HasSuffix(base, ".gpg") || strings.HasSuffix(base, ".asc")
	case "usr/share/keyrings/":
		switch base {
		case "debian-archive-keyring.gpg", "debian-archive-keyring.pgp", "ubuntu-archive-keyring.gpg":
			return true
		}
	}
	return false
}

// linkable reports whether the file at p is read in case a wanted file is
// a hard link to it: dpkg's own siblings of the status file (status-old,
// status-new).
func linkable(p string) bool {
	return wanted(p) || strings.HasPrefix(p, "var/lib/dpkg/status")
}

// distInfoDir returns the *.dist-info folder under a site-packages folder
// that p is or is inside of, or "".
func distInfoDir(p string) string {
	segs := strings.Split(p, "/")
	for i := 1; i < len(segs); i++ {
		if segs[i-1] == "site-packages" && strings.HasSuffix(segs[i], ".dist-info") {
			return strings.Join(segs[:i+1], "/")
		}
	}
	return ""
}

// file is one file of interest in the merged view of the layers.
type file struct {
	data  []byte
	layer int
}

// view is the part of an image's file system the SBOM reads, merged over
// its layers: the last layer's view wins, whiteouts delete.
type view struct {
	files    map[string]file
	distInfo map[string]int // dist-info folder → layer index
	total    int64
	maxFile  int64
	maxTotal int64
}

func newView(maxFile, maxTotal int64) *view {
	return &view{files: map[string]file{}, distInfo: map[string]int{}, maxFile: maxFile, maxTotal: maxTotal}
}

// remove deletes p and everything under it.
func (v *view) remove(p string) {
	for k, f := range v.files {
		if k == p || strings.HasPrefix(k, p+"/") || p == "" {
			v.total -= int64(len(f.data))
			delete(v.files, k)
		}
	}
	for k := range v.distInfo {
		if k == p || strings.HasPrefix(k, p+"/") || p == "" {
			delete(v.distInfo, k)
		}
	}
}

// removeUnder deletes everything under the folder dir, not dir itself.
func (v *view) removeUnder(dir string) {
	for k, f := range v.files {
		if dir == "" || strings.HasPrefix(k, dir+"/") {
			v.total -= int64(len(f.data))
			delete(v.files, k)
		}
	}
	for k := range v.distInfo {
		if dir == "" || strings.HasPrefix(k, dir+"/") {
			delete(v.distInfo, k)
		}
	}
}

func (v *view) put(p string, f file) {
	if old, ok := v.files[p]; ok {
		v.total -= int64(len(old.data))
	}
	v.files[p] = f
	v.total += int64(len(f.data))
}

// cleanName turns a tar entry name into a path relative to the root. Names
// with a ".." segment are refused (ok false): a layer cannot reach outside
// the root, and the SBOM does not guess what such an entry meant.
func cleanName(name string) (string, bool) {
	name = strings.TrimPrefix(name, "./")
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return "", false
		}
	}
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	return p, p != ""
}

// change is one entry of a layer that matters to the view.
type change struct {
	path string
	typ  byte
	link string
	data []byte
}

// applyLayer reads one layer (an uncompressed tar stream) into the view.
// OCI whiteouts in a layer hide what lower layers have, never what the
// same layer adds, so they are applied first whatever their order in the
// tar.
func (v *view) applyLayer(ctx context.Context, r io.Reader, layer int, what string) error {
	tr := tar.NewReader(r)
	var whiteouts, opaques []string
	var changes []change
	var layerBytes int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: read tar: %w", what, err)
		}
		p, ok := cleanName(hdr.Name)
		if !ok {
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == opaqueWhiteout:
			opaques = append(opaques, dir)
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			whiteouts = append(whiteouts, path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
			continue
		}
		c := change{path: p, typ: hdr.Typeflag, link: hdr.Linkname}
		if c.typ == tar.TypeLink {
			if l, ok := cleanName(hdr.Linkname); ok {
				c.link = l
			} else {
				c.typ = tar.TypeSymlink // a link we will not follow: it hides what was there
			}
		}
		if (c.typ == tar.TypeReg || c.typ == tar.TypeRegA) && aptKeyring(p) && hdr.Size > maxKeyringSize {
			c.typ = tar.TypeSymlink // not read: it hides what was there
		}
		if (c.typ == tar.TypeReg || c.typ == tar.TypeRegA) && linkable(p) {
			if hdr.Size > v.maxFile {
				return fmt.Errorf("%s: /%s is %d bytes, over the limit of %d: %w", what, p, hdr.Size, v.maxFile, ErrTooLarge)
			}
			layerBytes += hdr.Size
			if v.total+layerBytes > v.maxTotal {
				return fmt.Errorf("%s: /%s: the files read from the image add up to over %d bytes: %w", what, p, v.maxTotal, ErrTooLarge)
			}
			data, err := io.ReadAll(io.LimitReader(tr, v.maxFile+1))
			if err != nil {
				return fmt.Errorf("%s: read /%s: %w", what, p, err)
			}
			if int64(len(data)) > v.maxFile {
				return fmt.Errorf("%s: /%s is over the limit of %d bytes: %w", what, p, v.maxFile, ErrTooLarge)
			}
			c.data = data
		}
		changes = append(changes, c)
	}
	for _, d := range opaques {
		v.removeUnder(d)
	}
	for _, p := range whiteouts {
		v.remove(p)
	}
	inLayer := map[string]file{} // what this layer wrote, for hard links
	for _, c := range changes {
		di := distInfoDir(c.path)
		switch {
		case c.typ == tar.TypeDir:
			// A folder over a file of interest replaces it.
			if _, ok := v.files[c.path]; ok {
				v.remove(c.path)
			}
			if di != "" {
				v.distInfo[di] = layer
			}
			continue
		case c.typ == tar.TypeReg || c.typ == tar.TypeRegA:
			v.remove(c.path)
			f := file{data: c.data, layer: layer}
			if wanted(c.path) {
				v.put(c.path, f)
			}
			if c.data != nil {
				inLayer[c.path] = f
			}
		case c.typ == tar.TypeLink && wanted(c.path):
			f, ok := inLayer[c.link]
			if !ok {
				f, ok = v.files[c.link]
			}
			v.remove(c.path)
			if ok {
				f.layer = layer
				v.put(c.path, f)
				inLayer[c.path] = f
			}
		default:
			// A symlink, device or other entry replaces whatever was at
			// its path, and everything under it.
			v.remove(c.path)
		}
		if di != "" && di != c.path {
			v.distInfo[di] = layer
		}
	}
	if v.total > v.maxTotal {
		return fmt.Errorf("%s: the files read from the image add up to over %d bytes: %w", what, v.maxTotal, ErrTooLarge)
	}
	if n := len(v.files) + len(v.distInfo); n > maxEntries {
		return fmt.Errorf("%s: %d dpkg status files and Python dist-info folders, over the limit of %d: %w", what, n, maxEntries, ErrTooLarge)
	}
	return nil
}

// read returns a file of the merged view.
func (v *view) read(p string) (file, bool) {
	f, ok := v.files[p]
	return f, ok
}

// under returns the paths of files directly in folder dir, sorted.
func (v *view) under(dir string) []string {
	var out []string
	for k := range v.files {
		if d, _ := path.Split(k); d == dir+"/" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// imageData is what the SBOM needs from an image.
type imageData struct {
	name    string // the reference, for messages
	refName string // a name for the image: its repository, or the reference
	digest  digest.Digest
	created *time.Time
	os      string
	arch    string
	variant string
	labels  map[string]string
	layers  []digest.Digest
	view    *view
}

// readImage opens the image at ref (for an index: the instance sys
// chooses), reads its manifest and config, and merges its layers' files of
// interest in order.
func readImage(ctx context.Context, ref types.ImageReference, sys *types.SystemContext, maxFile, maxTotal int64) (*imageData, error) {
	name := transports.ImageName(ref)
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer src.Close()
	img, err := ciimage.FromUnparsedImage(ctx, sys, ciimage.UnparsedInstance(src, nil))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	raw, _, err := img.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", name, err)
	}
	d, err := manifest.Digest(raw)
	if err != nil {
		return nil, fmt.Errorf("digest manifest of %s: %w", name, err)
	}
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", name, err)
	}
	refName := name
	if named := ref.DockerReference(); named != nil {
		refName = named.Name()
	}
	out := &imageData{name: name, refName: refName, digest: d, created: cfg.Created, os: cfg.OS, arch: cfg.Architecture,
		variant: cfg.Variant, labels: cfg.Config.Labels, view: newView(maxFile, maxTotal)}
	// Storage keeps layers as it unpacked them: ask the source for the
	// blobs it can serve (uncompressed there); other transports serve what
	// the manifest names.
	infos, err := src.LayerInfosForCopy(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list layers of %s: %w", name, err)
	}
	if infos == nil {
		infos = img.LayerInfos()
	}
	for i, l := range infos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		what := fmt.Sprintf("%s: layer %d (%s)", name, i+1, l.Digest)
		if err := readLayer(ctx, src, l, i, out.view, what); err != nil {
			return nil, err
		}
		out.layers = append(out.layers, l.Digest)
	}
	return out, nil
}

func readLayer(ctx context.Context, src types.ImageSource, l types.BlobInfo, i int, v *view, what string) error {
	rc, _, err := src.GetBlob(ctx, l, none.NoCache)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rc.Close()
	plain, _, err := compression.AutoDecompress(rc)
	if err != nil {
		return fmt.Errorf("%s: decompress: %w", what, err)
	}
	defer plain.Close()
	return v.applyLayer(ctx, plain, i, what)
}
