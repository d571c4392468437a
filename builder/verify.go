package builder

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// ErrIndex means the reference names a multi-platform index, not an image:
// Verify checks images; publisher.VerifyRemote checks an index and every
// platform's image.
var ErrIndex = errors.New("is a multi-platform index, not a single image")

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// SystemContext reaches registries (auth, TLS); nil for local images.
	SystemContext *types.SystemContext
	// ExpectDigest, when set, is the manifest digest the image must have.
	ExpectDigest digest.Digest
	// Parallel is how many layers are read at once; 0 means GOMAXPROCS.
	Parallel int
	// Log receives per-layer progress; nil discards it.
	Log logrus.FieldLogger
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Ref    string        `json:"ref"`
	Digest string        `json:"digest"`
	OK     bool          `json:"ok"`
	Config ConfigCheck   `json:"config"`
	Layers []LayerReport `json:"layers"`
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

// imageData is an opened image: its source, manifest and config.
type imageData struct {
	src      types.ImageSource
	manifest manifest.Manifest
	raw      []byte
	digest   digest.Digest
	config   *imgspecv1.Image
	cfgInfo  types.BlobInfo
	cfgOK    bool
	layers   []Layer
	forCopy  []types.BlobInfo
}

// readImage opens ref, reads its manifest and config and checks the config
// blob against its digest. The caller closes r.src.
func readImage(ctx context.Context, sys *types.SystemContext, ref types.ImageReference) (*imageData, error) {
	name := transports.ImageName(ref)
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	r := &imageData{src: src}
	fail := func(err error) (*imageData, error) { src.Close(); return nil, err }
	raw, mime, err := src.GetManifest(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("read manifest of %s: %w", name, err))
	}
	if manifest.MIMETypeIsMultiImage(mime) {
		return fail(&InputError{Err: fmt.Errorf("%s: %w", name, ErrIndex)})
	}
	r.raw = raw
	r.digest = digest.FromBytes(raw)
	if r.manifest, err = manifest.FromBlob(raw, mime); err != nil {
		return fail(fmt.Errorf("parse manifest of %s: %w", name, err))
	}
	r.cfgInfo = r.manifest.ConfigInfo()
	rc, _, err := src.GetBlob(ctx, r.cfgInfo, none.NoCache)
	if err != nil {
		return fail(fmt.Errorf("read config %s of %s: %w", r.cfgInfo.Digest, name, err))
	}
	cfgRaw, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	rc.Close()
	if err != nil {
		return fail(fmt.Errorf("read config %s of %s: %w", r.cfgInfo.Digest, name, err))
	}
	r.cfgOK = digest.FromBytes(cfgRaw) == r.cfgInfo.Digest && (r.cfgInfo.Size < 0 || r.cfgInfo.Size == int64(len(cfgRaw)))
	r.config = &imgspecv1.Image{}
	if err := json.Unmarshal(cfgRaw, r.config); err != nil {
		return fail(fmt.Errorf("parse config of %s: %w", name, err))
	}
	if img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, nil)); err == nil {
		r.forCopy, _ = img.LayerInfosForCopy(ctx)
	}
	for i, l := range r.manifest.LayerInfos() {
		layer := Layer{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType}
		if i < len(r.config.RootFS.DiffIDs) {
			layer.DiffID = r.config.RootFS.DiffIDs[i].String()
		}
		r.layers = append(r.layers, layer)
	}
	return r, nil
}

// Verify reads back the image at ref and checks it: the manifest digest
// (against ExpectDigest and any digest in the reference), the config blob's
// digest and size, the number of layers against rootfs.diff_ids, and for
// every layer its blob digest and size against the manifest and its
// uncompressed digest against the config — one pass over each blob, layers
// in parallel. A mismatch is returned as an *IntegrityError (the report says
// which layers failed and how).
func Verify(ctx context.Context, ref types.ImageReference, opts VerifyOptions) (*VerifyReport, error) {
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	name := transports.ImageName(ref)
	r, err := readImage(ctx, opts.SystemContext, ref)
	if err != nil {
		return nil, err
	}
	defer r.src.Close()
	rep := &VerifyReport{Ref: name, Digest: r.digest.String(), Config: ConfigCheck{Digest: r.cfgInfo.Digest.String(), OK: r.cfgOK}}
	var problems []error
	expect := opts.ExpectDigest
	if dref := ref.DockerReference(); expect == "" && dref != nil {
		if d, ok := dref.(interface{ Digest() digest.Digest }); ok {
			expect = d.Digest()
		}
	}
	if expect != "" && expect != r.digest {
		problems = append(problems, &IntegrityError{What: "manifest of " + name, Check: "digest", Expected: expect.String(), Actual: r.digest.String()})
	}
	if !r.cfgOK {
		problems = append(problems, &IntegrityError{What: "config " + r.cfgInfo.Digest.String() + " of " + name, Check: "digest or size", Expected: r.cfgInfo.Digest.String(), Actual: "different content"})
	}
	if n, m := len(r.layers), len(r.config.RootFS.DiffIDs); n != m {
		problems = append(problems, &IntegrityError{What: name, Check: "layer count", Expected: fmt.Sprintf("%d diff_ids in the config", m), Actual: fmt.Sprintf("%d layers in the manifest", n)})
	}

	rep.Layers = make([]LayerReport, len(r.layers))
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, l := range r.layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.Layers[i] = checkLayer(ctx, r, i, l)
			log.WithFields(logrus.Fields{"layer": i, "digest": l.Digest, "ok": rep.Layers[i].OK}).Debug("layer checked")
		}()
	}
	wg.Wait()
	var readErrs []error
	for _, lr := range rep.Layers {
		if lr.readErr != nil {
			readErrs = append(readErrs, fmt.Errorf("layer %d %s of %s: %w", lr.Index, lr.Digest, name, lr.readErr))
			continue
		}
		if !lr.OK {
			problems = append(problems, &IntegrityError{What: fmt.Sprintf("layer %d %s of %s", lr.Index, lr.Digest, name), Check: lr.Problem})
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.OK = len(problems) == 0 && len(readErrs) == 0
	if len(problems) > 0 {
		return rep, errors.Join(append(problems, readErrs...)...)
	}
	if len(readErrs) > 0 {
		return rep, errors.Join(readErrs...)
	}
	return rep, nil
}

// checkLayer hashes layer i's blob and its uncompressed stream in one pass.
func checkLayer(ctx context.Context, r *imageData, i int, l Layer) LayerReport {
	rep := LayerReport{Index: i, Digest: l.Digest, DiffID: l.DiffID, Size: l.Size, MediaType: l.MediaType}
	fetch := r.manifest.LayerInfos()[i].BlobInfo
	if r.forCopy != nil && i < len(r.forCopy) {
		// Local storage serves layers uncompressed, by diffID; the manifest
		// of an image built here names them the same way.
		fetch = r.forCopy[i]
	}
	rc, _, err := r.src.GetBlob(ctx, fetch, none.NoCache)
	if err != nil {
		return readFailure(rep, err)
	}
	defer rc.Close()
	blobH, diffH := sha256.New(), sha256.New()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		dr, _, err := compression.AutoDecompress(pr)
		if err == nil {
			_, err = io.Copy(diffH, dr)
			dr.Close()
		}
		// Keep draining whatever happened, so that the blob itself is
		// always hashed to the end.
		io.Copy(io.Discard, pr)
		done <- err
	}()
	n, err := io.Copy(io.MultiWriter(blobH, pw), rc)
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
	gotDiff := digest.NewDigest(digest.SHA256, diffH)
	if derr != nil {
		problems = append(problems, fmt.Sprintf("does not decompress: %v", derr))
	} else if l.DiffID == "" {
		problems = append(problems, "no diff_id in the config for this layer")
	} else if gotDiff.String() != l.DiffID {
		problems = append(problems, fmt.Sprintf("diffID: expected %s, got %s", l.DiffID, gotDiff))
	}
	rep.OK = len(problems) == 0
	rep.Problem = strings.Join(problems, "; ")
	return rep
}

// readFailure records an error met while reading a layer. c/storage's own
// content checks failing is an integrity problem; anything else is not.
func readFailure(rep LayerReport, err error) LayerReport {
	if isStorageIntegrity(err) {
		rep.Problem = fmt.Sprintf("content: %v", err)
	} else {
		rep.Problem = fmt.Sprintf("cannot read blob: %v", err)
		rep.readErr = err
	}
	return rep
}

// isStorageIntegrity recognises c/storage's own checks failing while it
// reassembles a layer (a file changed on disk).
func isStorageIntegrity(err error) bool {
	return errors.Is(err, storage.ErrLayerIncorrectContentDigest) || strings.Contains(fmt.Sprint(err), "checksum failed")
}
