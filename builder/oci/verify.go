package oci

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	cimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"golang.org/x/sync/errgroup"
)

// ErrIndex means a reference names a multi-platform index where a single
// image is needed.
var ErrIndex = errors.New("is a multi-platform index, not a single image")

// Verification modes.
const (
	// Full downloads every blob: digest, size and diffID.
	Full = "full"
	// Fast checks the manifest and config by digest and every layer's
	// presence and size with a HEAD request (registries only; elsewhere it
	// is Full).
	Fast = "fast"
	// None skips verification (for callers that offer it).
	None = "none"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// SystemContext reaches registries (auth, TLS); nil for local images.
	SystemContext *types.SystemContext
	// ExpectDigest, when set, is the manifest digest the image must have.
	// A digest in the reference itself is checked too.
	ExpectDigest digest.Digest
	// Mode is Full (the default) or Fast.
	Mode string
	// Parallel is how many layers are read at once; 0 means GOMAXPROCS.
	Parallel int
	// Log receives per-layer progress; nil discards it.
	Log logrus.FieldLogger
	// Progress shows each layer as it is read; nil shows nothing.
	Progress progress.Reporter
}

// VerifyReport is what Verify found. For an index, Manifests holds one
// report per platform's image and Layers is empty.
type VerifyReport struct {
	Ref       string          `json:"ref"`
	Digest    string          `json:"digest"`
	OK        bool            `json:"ok"`
	Index     bool            `json:"index,omitempty"`
	Platform  string          `json:"platform,omitempty"`
	Config    *ConfigCheck    `json:"config,omitempty"`
	Layers    []LayerReport   `json:"layers"`
	Manifests []*VerifyReport `json:"manifests,omitempty"`
}

// ConfigCheck is the result for the image config blob.
type ConfigCheck struct {
	Digest string `json:"digest"`
	OK     bool   `json:"ok"`
}

// LayerReport is the result for one layer.
type LayerReport struct {
	Index     int    `json:"index"`
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
	OK        bool   `json:"ok"`
	// Problem says what differed, when OK is false.
	Problem string `json:"problem,omitempty"`
	// readErr is a failure to read the blob that says nothing about its
	// content (a network error): not an integrity failure.
	readErr error
}

// Name is the transport-qualified name of ref, for messages.
func Name(ref types.ImageReference) string { return transports.ImageName(ref) }

// Verify reads back the image or index at ref and checks it: the manifest
// digest (against ExpectDigest and any digest in the reference) before
// anything it names is read; for an index, every platform's manifest
// against the digest the index gives it; for each image the config blob's
// digest and size, the number of layers against rootfs.diff_ids, and for
// every layer its blob digest and size against the manifest and its
// uncompressed digest against the config — one pass over each blob, layers
// in parallel. Mismatches are *errs.IntegrityError (errs.ErrIntegrity); the
// report says which layers failed and how.
func Verify(ctx context.Context, ref types.ImageReference, opts VerifyOptions) (*VerifyReport, error) {
	if opts.Log == nil {
		opts.Log = Discard
	}
	name := Name(ref)
	src, err := ref.NewImageSource(ctx, opts.SystemContext)
	if err != nil {
		return nil, notFound(fmt.Errorf("open %s: %w", name, err))
	}
	defer src.Close()
	expect := opts.ExpectDigest
	if dref := ref.DockerReference(); dref != nil {
		if d, ok := dref.(interface{ Digest() digest.Digest }); ok {
			if expect != "" && expect != d.Digest() {
				return nil, errs.Inputf("%s: the expected digest %s is not the reference's", name, expect)
			}
			expect = d.Digest()
		}
	}
	if ref.Transport().Name() == "oci" {
		// The layout's index.json names the manifest by digest: a manifest
		// blob edited in place no longer matches it.
		d, err := layoutDigest(ref)
		if err != nil {
			return nil, err
		}
		if expect != "" && expect != d {
			return nil, &errs.IntegrityError{What: "manifest of " + name, Check: "digest", Expected: expect.String(), Actual: d.String() + " (in index.json)"}
		}
		expect = d
	}
	v := &verifier{src: src, ref: ref, opts: opts}
	if opts.Mode == Fast && ref.Transport().Name() == "docker" {
		v.fast = true
	}
	return v.verify(ctx, nil, expect, name)
}

type verifier struct {
	src  types.ImageSource
	ref  types.ImageReference
	opts VerifyOptions
	fast bool
	dest types.ImageDestination // for HEAD checks in fast mode, opened once
}

// verify checks the manifest at instance (nil: the top level) and what it
// names.
func (v *verifier) verify(ctx context.Context, instance *digest.Digest, expect digest.Digest, name string) (*VerifyReport, error) {
	m, err := readManifest(ctx, v.src, instance, name)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Ref: name, Digest: m.digest.String(), Layers: []LayerReport{}}
	if expect != "" && expect != m.digest {
		// Nothing the wrong manifest names is read: the mismatch is the news.
		return rep, &errs.IntegrityError{What: "manifest of " + name, Check: "digest", Expected: expect.String(), Actual: m.digest.String()}
	}
	if m.index != nil {
		return v.verifyIndex(ctx, m, rep, name)
	}
	cfgErr := m.readConfig(ctx, v.src)
	if cfgErr != nil && !errors.Is(cfgErr, errs.ErrIntegrity) {
		return nil, cfgErr
	}
	rep.Config = &ConfigCheck{Digest: m.config.Digest.String(), OK: cfgErr == nil}
	var problems []error
	if cfgErr != nil {
		problems = append(problems, cfgErr)
	} else if n, k := len(m.layers), len(m.image.RootFS.DiffIDs); n != k {
		problems = append(problems, &errs.IntegrityError{What: name, Check: "layer count", Expected: fmt.Sprintf("%d diff_ids in the config", k), Actual: fmt.Sprintf("%d layers in the manifest", n)})
	}
	if v.fast {
		if err := v.headLayers(ctx, m, name); err != nil {
			return rep, err
		}
		for i, l := range m.layers {
			rep.Layers = append(rep.Layers, LayerReport{Index: i, Digest: l.Digest, DiffID: l.DiffID, Size: l.Size, MediaType: l.MediaType, OK: true})
		}
		rep.OK = len(problems) == 0
		return rep, errors.Join(problems...)
	}
	rep.Layers = make([]LayerReport, len(m.layers))
	if cfgErr == nil {
		v.checkLayers(ctx, m, instance, rep)
	}
	var readErrs []error
	for _, lr := range rep.Layers {
		if lr.readErr != nil {
			readErrs = append(readErrs, fmt.Errorf("layer %d %s of %s: %w", lr.Index, lr.Digest, name, lr.readErr))
		} else if !lr.OK && cfgErr == nil {
			problems = append(problems, &errs.IntegrityError{What: fmt.Sprintf("layer %d %s of %s", lr.Index, lr.Digest, name), Check: lr.Problem})
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.OK = len(problems) == 0 && len(readErrs) == 0
	return rep, errors.Join(append(problems, readErrs...)...)
}

// verifyIndex checks every child of an index, each against the digest the
// index names it by.
func (v *verifier) verifyIndex(ctx context.Context, m *manifestData, rep *VerifyReport, name string) (*VerifyReport, error) {
	rep.Index = true
	var failures []error
	// A manifest the index names more than once is read and checked
	// once; its failure is reported once.
	done := map[digest.Digest]*VerifyReport{}
	for _, child := range m.index.Instances() {
		c := child
		cname := fmt.Sprintf("%s (manifest %s)", name, c)
		crep, seen := done[c]
		var err error
		if seen {
			cp := *crep
			crep = &cp
		} else {
			crep, err = v.verifyChild(ctx, c, cname)
			if crep == nil {
				crep = &VerifyReport{Ref: cname, Digest: c.String()}
			}
			done[c] = crep
		}
		if info, ierr := m.index.Instance(c); ierr == nil && info.ReadOnly.Platform != nil {
			p := info.ReadOnly.Platform
			crep.Platform = strings.TrimSuffix(p.OS+"/"+p.Architecture+"/"+p.Variant, "/")
		}
		rep.Manifests = append(rep.Manifests, crep)
		if err != nil {
			failures = append(failures, err)
		}
	}
	rep.OK = len(failures) == 0
	return rep, errors.Join(failures...)
}

// verifyChild verifies one child of an index. In containers-storage a list
// is a record of its own and each platform's image another one, so there
// the child is read from the image that carries its manifest.
func (v *verifier) verifyChild(ctx context.Context, c digest.Digest, name string) (*VerifyReport, error) {
	st, ok := v.ref.Transport().(istorage.StoreTransport)
	if !ok || st.GetStoreIfSet() == nil {
		return v.verify(ctx, &c, c, name)
	}
	id, err := imageWithManifest(st.GetStoreIfSet(), c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cref, err := istorage.Transport.NewStoreReference(st.GetStoreIfSet(), nil, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	src, err := cref.NewImageSource(ctx, v.opts.SystemContext)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer src.Close()
	child := &verifier{src: src, ref: cref, opts: v.opts}
	return child.verify(ctx, nil, c, name)
}

// headLayers checks that every layer is present with its size, without
// downloading it.
func (v *verifier) headLayers(ctx context.Context, m *manifestData, name string) error {
	if v.dest == nil {
		d, err := v.ref.NewImageDestination(ctx, v.opts.SystemContext)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		v.dest = d
		defer func() { v.dest.Close(); v.dest = nil }()
	}
	for i, l := range m.parsed.LayerInfos() {
		ok, info, err := v.dest.TryReusingBlob(ctx, types.BlobInfo{Digest: l.Digest, Size: -1}, none.NoCache, false)
		what := fmt.Sprintf("layer %d %s of %s", i, l.Digest, name)
		switch {
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		case !ok:
			return &errs.IntegrityError{What: what, Check: "presence", Expected: "the blob", Actual: "missing"}
		case info.Size >= 0 && l.Size >= 0 && info.Size != l.Size:
			return &errs.IntegrityError{What: what, Check: "size", Expected: fmt.Sprint(l.Size), Actual: fmt.Sprint(info.Size)}
		}
	}
	return nil
}

// checkLayers hashes every layer, Parallel at a time, into rep.Layers.
func (v *verifier) checkLayers(ctx context.Context, m *manifestData, instance *digest.Digest, rep *VerifyReport) {
	fetch := make([]types.BlobInfo, len(m.layers))
	for i, l := range m.parsed.LayerInfos() {
		fetch[i] = l.BlobInfo
	}
	// Local storage serves layers uncompressed, by diffID; the manifest of
	// an image built here names them the same way.
	if img, err := cimage.FromUnparsedImage(ctx, v.opts.SystemContext, cimage.UnparsedInstance(v.src, instance)); err == nil {
		if forCopy, err := img.LayerInfosForCopy(ctx); err == nil && len(forCopy) == len(fetch) {
			fetch = forCopy
		}
	}
	parallel := v.opts.Parallel
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, l := range m.layers {
		g.Go(func() error {
			bar := progress.Start(v.opts.Progress, fmt.Sprintf("verify layer %d %s", i, Short(l.Digest)), fetch[i].Size)
			rep.Layers[i] = checkLayer(ctx, v.src, fetch[i], i, l, bar)
			bar.Done(rep.Layers[i].readErr)
			v.opts.Log.WithFields(logrus.Fields{"layer": i, "digest": l.Digest, "ok": rep.Layers[i].OK}).Debug("layer checked")
			return nil
		})
	}
	g.Wait()
}

// checkLayer hashes layer i's blob and its uncompressed stream in one pass.
func checkLayer(ctx context.Context, src types.ImageSource, fetch types.BlobInfo, i int, l Layer, bar progress.Bar) LayerReport {
	rep := LayerReport{Index: i, Digest: l.Digest, DiffID: l.DiffID, Size: l.Size, MediaType: l.MediaType}
	rc, _, err := src.GetBlob(ctx, fetch, none.NoCache)
	if err != nil {
		return readFailure(rep, err)
	}
	defer rc.Close()
	blobH, diffH := sha256.New(), sha256.New()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	found := "" // the compression the blob really has
	go func() {
		algo, decompress, r, err := compression.DetectCompressionFormat(pr)
		if err == nil {
			dr := io.NopCloser(r)
			if decompress != nil {
				found = algo.Name()
				dr, err = decompress(r)
			}
			if err == nil {
				_, err = io.Copy(diffH, dr)
				dr.Close()
			}
		}
		// Keep draining whatever happened, so that the blob itself is
		// always hashed to the end.
		io.Copy(io.Discard, pr)
		done <- err
	}()
	n, err := io.Copy(io.MultiWriter(blobH, pw), progress.Reader(rc, bar))
	pw.CloseWithError(err)
	derr := <-done
	if err != nil {
		return readFailure(rep, err)
	}
	gotBlob := digest.NewDigest(digest.SHA256, blobH)
	var problems []string
	if gotBlob != fetch.Digest {
		problems = append(problems, fmt.Sprintf("digest: expected %s, got %s", fetch.Digest, gotBlob))
	}
	if fetch.Size >= 0 && n != fetch.Size {
		problems = append(problems, fmt.Sprintf("size: expected %d, got %d", fetch.Size, n))
	}
	if fetch.Digest.String() == l.Digest && l.MediaType != "" { // schema 1 manifests carry no media types
		// The manifest's own blob (not local storage's uncompressed copy):
		// its media type must say what the bytes are.
		if want, ok := layerCompression(l.MediaType); !ok {
			problems = append(problems, fmt.Sprintf("media type %q is not a layer media type", l.MediaType))
		} else if derr == nil && want != found {
			problems = append(problems, fmt.Sprintf("media type %q says %s, the blob is %s", l.MediaType, orNone(want), orNone(found)))
		}
	}
	gotDiff := digest.NewDigest(digest.SHA256, diffH)
	switch {
	case derr != nil:
		problems = append(problems, fmt.Sprintf("does not decompress: %v", derr))
	case l.DiffID == "":
		problems = append(problems, "no diff_id in the config for this layer")
	case gotDiff.String() != l.DiffID:
		problems = append(problems, fmt.Sprintf("diffID: expected %s, got %s", l.DiffID, gotDiff))
	}
	rep.OK = len(problems) == 0
	rep.Problem = strings.Join(problems, "; ")
	return rep
}

// layoutDigest is the manifest digest an OCI layout's index.json gives for
// ref's tag (or its only manifest, when ref names no tag).
func layoutDigest(ref types.ImageReference) (digest.Digest, error) {
	// As c/image: the path ends at the first ":" (an image name in a
	// layout may contain more), and "@N" names the Nth manifest.
	dir, tag, _ := strings.Cut(ref.StringWithinTransport(), ":")
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", errs.NotFoundf("%s: %w", Name(ref), err)
	}
	var idx imgspecv1.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return "", errs.Inputf("%s: index.json: %w", Name(ref), err)
	}
	if n, ok := strings.CutPrefix(tag, "@"); ok {
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= len(idx.Manifests) {
			return "", errs.Inputf("%s: index.json has no manifest %s", Name(ref), tag)
		}
		return idx.Manifests[i].Digest, nil
	}
	var found []digest.Digest
	for _, m := range idx.Manifests {
		if tag == "" || m.Annotations[imgspecv1.AnnotationRefName] == tag {
			found = append(found, m.Digest)
		}
	}
	if len(found) != 1 {
		return "", errs.Inputf("%s: index.json names %d manifests for %q", Name(ref), len(found), tag)
	}
	return found[0], nil
}

// layerCompression is the compression a layer media type declares ("" for
// none), and whether it is a layer media type at all.
func layerCompression(mediaType string) (string, bool) {
	switch mediaType {
	case imgspecv1.MediaTypeImageLayer, imgspecv1.MediaTypeImageLayerNonDistributable, //nolint:staticcheck // still met in the wild
		manifest.DockerV2SchemaLayerMediaTypeUncompressed:
		return "", true
	case imgspecv1.MediaTypeImageLayerGzip, imgspecv1.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		manifest.DockerV2Schema2LayerMediaType, manifest.DockerV2Schema2ForeignLayerMediaTypeGzip:
		return compression.Gzip.Name(), true
	case imgspecv1.MediaTypeImageLayerZstd, imgspecv1.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return compression.Zstd.Name(), true
	case manifest.DockerV2Schema2ForeignLayerMediaType,
		// Build attestations (buildx provenance and SBOMs) and cosign
		// signatures store plain JSON as their "layers".
		"application/vnd.in-toto+json", "application/vnd.dev.cosign.simplesigning.v1+json":
		return "", true
	}
	return "", false
}

func orNone(algo string) string {
	if algo == "" {
		return "uncompressed"
	}
	return algo
}

// readFailure records an error met while reading a layer. c/storage's own
// content checks failing is an integrity problem; anything else is not.
func readFailure(rep LayerReport, err error) LayerReport {
	if errors.Is(err, storage.ErrLayerIncorrectContentDigest) || strings.Contains(fmt.Sprint(err), "checksum failed") {
		rep.Problem = fmt.Sprintf("content: %v", err)
	} else {
		rep.Problem = fmt.Sprintf("cannot read blob: %v", err)
		rep.readErr = err
	}
	return rep
}

// manifestData is one manifest read from a source: an image's (parsed,
// layers) or an index's.
type manifestData struct {
	raw    []byte
	mime   string
	digest digest.Digest
	index  manifest.List
	parsed manifest.Manifest
	config types.BlobInfo
	image  *imgspecv1.Image
	layers []Layer
}

// readManifest reads and parses the manifest at instance (nil: the top
// level).
func readManifest(ctx context.Context, src types.ImageSource, instance *digest.Digest, name string) (*manifestData, error) {
	raw, mime, err := src.GetManifest(ctx, instance)
	if err != nil {
		err = fmt.Errorf("read manifest of %s: %w", name, err)
		if instance == nil {
			// The reference names nothing (a child an index names but
			// the registry lacks is the index's fault, not the user's).
			err = notFound(err)
		}
		return nil, err
	}
	if mime == "" {
		mime = manifest.GuessMIMEType(raw)
	}
	m := &manifestData{raw: raw, mime: mime, digest: digest.FromBytes(raw)}
	if instance != nil && m.digest != *instance {
		return nil, &errs.IntegrityError{What: "manifest of " + name, Check: "digest", Expected: instance.String(), Actual: m.digest.String()}
	}
	if manifest.MIMETypeIsMultiImage(mime) {
		if m.index, err = manifest.ListFromBlob(raw, mime); err != nil {
			return nil, fmt.Errorf("parse index of %s: %w", name, err)
		}
		return m, nil
	}
	if m.parsed, err = manifest.FromBlob(raw, mime); err != nil {
		return nil, fmt.Errorf("parse manifest of %s: %w", name, err)
	}
	m.config = m.parsed.ConfigInfo()
	for _, l := range m.parsed.LayerInfos() {
		m.layers = append(m.layers, Layer{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType})
	}
	return m, nil
}

// readConfig reads the config blob, checks its digest and size before
// parsing it, and fills in the layers' diffIDs. A mismatch is an
// *errs.IntegrityError.
func (m *manifestData) readConfig(ctx context.Context, src types.ImageSource) error {
	what := "config " + m.config.Digest.String()
	rc, _, err := src.GetBlob(ctx, m.config, none.NoCache)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	raw, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	rc.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if got := digest.FromBytes(raw); got != m.config.Digest {
		return &errs.IntegrityError{What: what, Check: "digest", Expected: m.config.Digest.String(), Actual: got.String()}
	}
	if m.config.Size >= 0 && m.config.Size != int64(len(raw)) {
		return &errs.IntegrityError{What: what, Check: "size", Expected: fmt.Sprint(m.config.Size), Actual: fmt.Sprint(len(raw))}
	}
	m.image = &imgspecv1.Image{}
	if err := json.Unmarshal(raw, m.image); err != nil {
		return fmt.Errorf("parse %s: %w", what, err)
	}
	for i := range m.layers {
		if i < len(m.image.RootFS.DiffIDs) {
			m.layers[i].DiffID = m.image.RootFS.DiffIDs[i].String()
		}
	}
	return nil
}

// Discard is a logger that drops everything: what the packages of this
// module log to when the caller gives no logger (they never log through
// logrus' package-level logger).
var Discard logrus.FieldLogger = &logrus.Logger{Out: io.Discard, Formatter: new(logrus.TextFormatter), Hooks: make(logrus.LevelHooks), Level: logrus.PanicLevel}

// notFound marks a registry's 404 (no such manifest, tag or repository) as
// errs.ErrNotFound: the reference names nothing, which retrying cannot
// change.
func notFound(err error) error {
	if remote.IsNotFound(err) {
		return errs.Mark(errs.ErrNotFound, err)
	}
	return err
}
