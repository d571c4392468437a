package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/containers/buildah/define"
	"github.com/containers/buildah/imagebuildah"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"go.podman.io/common/libimage"
	"go.podman.io/common/pkg/config"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// BuildOptions tune Build. Store and Fetcher are required.
type BuildOptions struct {
	Store   storage.Store
	Fetcher *source.Fetcher
	// Hosts says how base images are pulled (credentials, CA, insecure
	// hosts, pull mirrors); nil means the system's defaults.
	Hosts *remote.Hosts
	// SourceDateEpoch overrides the definition's timestamp. When neither
	// sets one, the commit time of the last git commit touching the
	// definition folder is used, then 0.
	SourceDateEpoch *time.Time
	// Revision is recorded as org.opencontainers.image.revision; empty means
	// the last git commit touching the definition folder, if any.
	Revision string
	// Platforms (os/arch[/variant]) to build for; none means this
	// machine's. Each must be one the definition declares. A foreign
	// platform builds under qemu-user emulation (see CheckEmulation). With
	// several, each platform's image is named TAG-os-arch and a manifest
	// list carrying the definition's tags joins them.
	Platforms []string
	// ExtraTags are added to the definition's tags.
	ExtraTags []string
	// NoCache rebuilds every step (a Cache's From is not read then; its
	// To still receives every step).
	NoCache bool
	// Cache shares steps with other builds through registries; see
	// LayerCache. Not for the podman service backend.
	Cache *LayerCache
	// TmpDir holds the build context and big temporary files; "" means os.TempDir().
	TmpDir string
	// Output receives the build's step-by-step output (never stdout when
	// the caller prints JSON there).
	Output io.Writer
	// Log receives structured progress.
	Log logrus.FieldLogger
	// Progress shows the base image's blobs as they are pulled; nil leaves
	// that to c/image's own report on Output.
	Progress progress.Reporter
}

// Result describes a built image.
type Result struct {
	ID      string `json:"id"`
	Digest  string `json:"digest"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Tags are the image's tags; Names the local references carrying them.
	// RollingTags are those of Tags that follow the newest image (the
	// definition's rollingTags): publishing moves them on purpose.
	Tags        []string         `json:"tags"`
	RollingTags []string         `json:"rollingTags,omitempty"`
	Names       []string         `json:"names"`
	Base        source.Base      `json:"base"`
	Layers      []oci.Layer      `json:"layers"`
	Sources     []source.Fetched `json:"sources"`
	Created     string           `json:"created"`
	Revision    string           `json:"revision,omitempty"`
	// Platform is what the image was built for; empty for a list.
	Platform string  `json:"platform,omitempty"`
	Seconds  float64 `json:"seconds"`
	// SBOM is the SPDX 2.3 document of what is in the image (per platform
	// in Manifests for a list); see builder/sbom.
	SBOM *sbom.Document `json:"-"`
	// Cache is what the registry layer cache did (per platform in
	// Manifests for a list); nil without one.
	Cache *CacheReport `json:"cache,omitempty"`
	// Manifests are the platform images of a multi-platform build: then
	// ID, Digest and Names are the manifest list's, and Base, Layers and
	// Sources are each platform's own.
	Manifests []PlatformImage `json:"manifests,omitempty"`
}

// PlatformImage is one platform's image in a multi-platform build.
type PlatformImage struct {
	Platform string           `json:"platform"`
	ID       string           `json:"id"`
	Digest   string           `json:"digest"`
	Names    []string         `json:"names"`
	Base     source.Base      `json:"base"`
	Layers   []oci.Layer      `json:"layers"`
	Sources  []source.Fetched `json:"sources"`
	Cache    *CacheReport     `json:"cache,omitempty"`
	SBOM     *sbom.Document   `json:"-"`
}

// Build fetches and checks def's sources, then builds def's Containerfile
// into opts.Store with buildah (chroot isolation, layer cache on,
// timestamps pinned so that the same inputs give the same digest).
//
// Several platforms build one after the other into one manifest list (see
// BuildOptions.Platforms); every platform is checked before any is built.
func Build(ctx context.Context, def *images.Definition, opts BuildOptions) (*Result, error) {
	plats, err := targetPlatforms(def, opts.Platforms)
	if err != nil {
		return nil, err
	}
	if len(plats) == 1 {
		return buildOne(ctx, def, opts, plats[0], "")
	}
	start := time.Now()
	var children []*Result
	for _, pl := range plats {
		r, err := buildOne(ctx, def, opts, pl, "-"+pl.TagSuffix())
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", pl, err)
		}
		children = append(children, r)
	}
	return makeList(ctx, def, opts, children, start)
}

// targetPlatforms checks the requested platforms against the definition
// and this machine.
func targetPlatforms(def *images.Definition, want []string) ([]oci.Platform, error) {
	if len(want) == 0 {
		want = []string{oci.HostPlatform().String()}
		if !slices.Contains(def.Platforms, want[0]) {
			return nil, errs.Inputf("definition %s declares %s, not this machine's %s: name the platforms to build with --platform", def.Path, strings.Join(def.Platforms, ", "), want[0])
		}
	}
	var out []oci.Platform
	for _, w := range want {
		pl, err := oci.ParsePlatform(w)
		if err != nil {
			return nil, err
		}
		switch {
		case !slices.Contains(def.Platforms, pl.String()):
			return nil, errs.Inputf("definition %s declares %s, not %s", def.Path, strings.Join(def.Platforms, ", "), pl)
		case slices.Contains(out, pl):
			return nil, errs.Inputf("platform %s is named twice", pl)
		}
		if err := CheckEmulation(pl); err != nil {
			return nil, err
		}
		out = append(out, pl)
	}
	// One order whatever the command line's, so the list is the same bytes.
	slices.SortFunc(out, func(a, b oci.Platform) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// buildOne builds def for one platform; suffix is added to every tag.
func buildOne(ctx context.Context, def *images.Definition, opts BuildOptions, pl oci.Platform, suffix string) (*Result, error) {
	p, err := prepare(ctx, def, opts, pl, suffix)
	if err != nil {
		return nil, err
	}
	defer p.close()
	hosts := opts.Hosts
	if hosts == nil {
		if hosts, err = (remote.Registries{}).Open(p.work); err != nil {
			return nil, err
		}
	}
	sys := hosts.ForPull()
	sys.BlobInfoCacheDir = filepath.Join(opts.Store.GraphRoot(), "cache")
	sys.OSChoice, sys.ArchitectureChoice, sys.VariantChoice = pl.OS, pl.Arch, pl.Variant
	if def.Base.Image != "scratch" {
		p.log.Infof("base image %s", def.Base.Ref())
		id, err := pullBase(ctx, opts.Store, sys, def.Base.Ref(), pl, p.out, opts.Progress)
		if err != nil {
			return nil, fmt.Errorf("pull base image %s: %w", def.Base.Ref(), explainMissingTool(err))
		}
		img, err := opts.Store.Image(id)
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", def.Base.Ref(), err)
		}
		if err := p.setBase(img.Digest, img.Digests); err != nil {
			return nil, err
		}
		p.baseID = id
	}
	bo := p.buildOptions()
	bo.Platforms = []struct{ OS, Arch, Variant string }{{OS: pl.OS, Arch: pl.Arch, Variant: pl.Variant}}
	bo.SystemContext = sys
	bo.SignaturePolicyPath = sys.SignaturePolicyPath
	bo.SourceDateEpoch = &p.epoch
	bo.RewriteTimestamp = true
	bo.NoCache = opts.NoCache
	var lc *layerCache
	if opts.Cache.enabled() {
		in := keyInput{Containerfile: p.containerfile, ContextDir: p.contextDir, Args: bo.Args, Labels: bo.Labels,
			Platform: pl, Epoch: p.epoch, BaseRef: def.Base.Ref(), BaseID: p.baseID, Store: opts.Store}
		if lc, err = startCache(ctx, opts.Cache, in, hosts, opts.NoCache, &bo, p.log, opts.Progress); err != nil {
			return nil, err
		}
	}
	id, _, err := imagebuildah.BuildDockerfiles(ctx, opts.Store, bo, p.containerfile)
	var cacheReport *CacheReport
	if lc != nil {
		cacheReport = lc.finish(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", def.Name, explainMissingTool(err))
	}
	ref, err := istorage.Transport.NewStoreReference(opts.Store, nil, id)
	if err != nil {
		return nil, fmt.Errorf("built image %s: %w", id, err)
	}
	d, layers, err := oci.Layers(ctx, nil, ref)
	if err != nil {
		return nil, fmt.Errorf("built image %s: %w", id, err)
	}
	if err := nameByID(opts.Store, p.res, def.Name, p.deferred, id); err != nil {
		return nil, fmt.Errorf("build %s: %w", def.Name, err)
	}
	res := p.finish(id, d, layers)
	res.Cache = cacheReport
	if res.SBOM, err = sbom.Generate(ctx, ref, sbomInput(res)); err != nil {
		return nil, fmt.Errorf("build %s: SBOM: %w", def.Name, err)
	}
	return res, nil
}

// sbomInput is what the SBOM learns from the build rather than the image.
func sbomInput(res *Result) sbom.Input {
	in := sbom.Input{Name: res.Name, Version: res.Version, Base: res.Base}
	for _, f := range res.Sources {
		if strings.HasPrefix(f.URL, "file://") && !checkedSource(f) {
			// An unpinned local file is part of the trusted build
			// context, like the Containerfile (testdata/busybox's
			// unpacker is the build machine's own busybox and not in the
			// image): listing it would make the SBOM differ between
			// machines that build the same image.
			continue
		}
		in.Sources = append(in.Sources, f)
	}
	return in
}

// checkedSource reports whether a source was checked against a pinned
// sha256, a published checksum (make dist's SHA256SUMS for the builder
// image's binary) or a signature, rather than trusted as part of the
// build context.
func checkedSource(f source.Fetched) bool {
	for _, c := range f.Checks {
		if strings.HasPrefix(c, "sha") || strings.HasPrefix(c, "openpgp ") {
			return true
		}
	}
	return false
}

// SBOMs are the build's SBOMs by platform: one under "" for an image,
// each platform's for a list (see sbom.WriteFiles).
func (r *Result) SBOMs() map[string]*sbom.Document {
	if len(r.Manifests) == 0 {
		return map[string]*sbom.Document{"": r.SBOM}
	}
	out := map[string]*sbom.Document{}
	for _, m := range r.Manifests {
		out[m.Platform] = m.SBOM
	}
	return out
}

// pullBase pulls ref into store unless it is there already and returns its
// image ID. It goes through libimage directly rather than buildah.Pull, which
// insists on finding a container network backend first.
func pullBase(ctx context.Context, store storage.Store, sys *types.SystemContext, ref string, pl oci.Platform, out io.Writer, rep progress.Reporter) (string, error) {
	rt, err := libimage.RuntimeFromStore(store, &libimage.RuntimeOptions{SystemContext: sys})
	if err != nil {
		return "", err
	}
	var po libimage.PullOptions
	if !native(pl) {
		// libimage would then re-pull an image it has, to be safe
		// from images that declare a wrong platform; a local base (such
		// as the demo's) has no registry to come from, so look first.
		img, _, err := rt.LookupImage(ref, &libimage.LookupImageOptions{OS: pl.OS, Architecture: pl.Arch, Variant: pl.Variant})
		if err == nil {
			return img.ID(), nil
		}
		po.OS, po.Architecture, po.Variant = pl.OS, pl.Arch, pl.Variant
	}
	retries, delay := uint(3), 2*time.Second
	po.CopyOptions = libimage.CopyOptions{
		SignaturePolicyPath: sys.SignaturePolicyPath,
		Writer:              out,
		MaxRetries:          &retries,
		RetryDelay:          &delay,
	}
	if rep != nil {
		ch, done := oci.CopyProgress(rep, "pull")
		defer done()
		po.CopyOptions.Progress, po.CopyOptions.Writer = ch, nil
	}
	imgs, err := rt.Pull(ctx, ref, config.PullPolicyMissing, &po)
	if err != nil {
		return "", err
	}
	if len(imgs) == 0 {
		return "", fmt.Errorf("no image pulled")
	}
	return imgs[0].ID(), nil
}

// prepared is a build context made ready for a backend: the definition
// copied out, its sources fetched, checked and placed, labels and arguments
// computed.
type prepared struct {
	def           *images.Definition
	log           logrus.FieldLogger
	out           io.Writer
	start         time.Time
	work          string
	contextDir    string
	containerfile string
	epoch         time.Time
	res           *Result
	// deferred are tags that derive from the image's ID (see
	// images.ImageTag), given once the image exists.
	deferred []string
	// baseID is the base image's ID in the store ("" for scratch).
	baseID string
}

func prepare(ctx context.Context, def *images.Definition, opts BuildOptions, pl oci.Platform, suffix string) (*prepared, error) {
	p := &prepared{def: def, log: opts.Log, out: opts.Output, start: time.Now()}
	if p.log == nil {
		p.log = oci.Discard
	}
	if p.out == nil {
		p.out = io.Discard
	}
	if !native(pl) {
		p.log = p.log.WithField("platform", pl.String())
		p.log.Warnf("building for %s under qemu-user emulation: expect it to be many times slower than a native build", pl)
	}
	work, err := os.MkdirTemp(opts.TmpDir, "agentforge-build-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", def.Name, err)
	}
	p.work = work
	p.contextDir = filepath.Join(work, "context")
	p.containerfile = filepath.Join(p.contextDir, filepath.FromSlash(def.Containerfile))
	if err := copyContext(p.contextDir, def.FS); err != nil {
		p.close()
		return nil, fmt.Errorf("build %s: copy definition to the build context: %w", def.Name, err)
	}
	p.res = &Result{Name: def.Name, Version: def.Version, Base: source.Base{Ref: def.Base.Ref()}, Platform: pl.String()}
	for _, src := range def.Sources {
		if !src.ForPlatform(pl.String()) {
			continue
		}
		f, err := opts.Fetcher.Fetch(ctx, src)
		if err != nil {
			p.close()
			return nil, err
		}
		if err := placeFile(f.Path, filepath.Join(p.contextDir, filepath.FromSlash(src.Dest))); err != nil {
			p.close()
			return nil, fmt.Errorf("build %s: place source %s: %w", def.Name, src.Name, err)
		}
		p.res.Sources = append(p.res.Sources, f)
	}
	p.epoch, p.res.Revision = pinTime(def, opts, p.log)
	p.res.Created = p.epoch.UTC().Format(time.RFC3339)
	// A tag derived from the image's ID is given once the image exists.
	for _, t := range allTags(def, opts) {
		if strings.Contains(t, images.ImageID) {
			p.deferred = append(p.deferred, t+suffix)
			continue
		}
		p.res.Tags = append(p.res.Tags, t+suffix)
		p.res.Names = append(p.res.Names, "localhost/"+def.Name+":"+t+suffix)
	}
	for _, t := range def.RollingTags {
		p.res.RollingTags = append(p.res.RollingTags, t+suffix)
	}
	return p, nil
}

// allTags are the tags a build gives its image: the definition's, its
// rolling ones, and the caller's extra tags.
func allTags(def *images.Definition, opts BuildOptions) []string {
	return slices.Concat(def.Tags, def.RollingTags, opts.ExtraTags)
}

// nameByID gives the image id the tags that derive from it (see
// images.ImageTag), taking them off any other image first; they join the
// result's tags and names.
func nameByID(store storage.Store, res *Result, name string, tags []string, id string) error {
	var names []string
	for _, t := range tags {
		tag := images.ImageTag(t, id)
		res.Tags = append(res.Tags, tag)
		names = append(names, "localhost/"+name+":"+tag)
	}
	if len(names) == 0 {
		return nil
	}
	if err := freeNames(store, names); err != nil {
		return err
	}
	if err := store.AddNames(id, names); err != nil {
		return fmt.Errorf("name %s: %w", id, err)
	}
	res.Names = append(res.Names, names...)
	return nil
}

func (p *prepared) close() { os.RemoveAll(p.work) }

// setBase records the base image's digest, checking it against a pin.
func (p *prepared) setBase(d digest.Digest, all []digest.Digest) error {
	p.res.Base.Digest = d.String()
	if pin := p.def.Base.Digest; pin != "" && d.String() != pin && !slices.Contains(all, digest.Digest(pin)) {
		return &errs.IntegrityError{What: "base image " + p.def.Base.Image, Check: "digest", Expected: pin, Actual: d.String()}
	}
	return nil
}

// buildOptions are the buildah options every backend shares.
func (p *prepared) buildOptions() define.BuildOptions {
	def := p.def
	labels := []string{}
	for _, k := range sortedKeys(def.Labels) {
		labels = append(labels, k+"="+def.Labels[k])
	}
	labels = append(labels,
		"org.opencontainers.image.version="+def.Version,
		"org.opencontainers.image.created="+p.res.Created,
	)
	if def.Base.Image != "scratch" {
		labels = append(labels,
			"org.opencontainers.image.base.name="+def.Base.Image,
			"org.opencontainers.image.base.digest="+p.res.Base.Digest)
	}
	if p.res.Revision != "" {
		labels = append(labels, "org.opencontainers.image.revision="+p.res.Revision)
	}
	args := map[string]string{}
	for k, v := range def.Args {
		args[k] = v
	}
	// Last: the base pulled and checked above is the one built on, whatever
	// a library caller's Args say (images.Load refuses the argument).
	args[images.BaseImageArg] = def.Base.Ref()
	p.log.WithFields(logrus.Fields{"definition": def.Path, "tags": strings.Join(p.res.Tags, ","), "created": p.res.Created}).Infof("building %s", def.Name)
	return define.BuildOptions{
		ContextDirectory:        p.contextDir,
		Isolation:               define.IsolationChroot,
		NetworkInterface:        hostNetwork{},
		PullPolicy:              define.PullIfMissing,
		Args:                    args,
		Labels:                  labels,
		Output:                  first(p.res.Names),
		AdditionalTags:          rest(p.res.Names),
		OutputFormat:            define.OCIv1ImageManifest,
		Layers:                  true,
		RemoveIntermediateCtrs:  true,
		ForceRmIntermediateCtrs: true,
		CommonBuildOpts:         &define.CommonBuildOptions{Ulimit: currentUlimits()},
		MaxPullPushRetries:      3,
		PullPushRetryDelay:      2 * time.Second,
		Out:                     p.out,
		Err:                     p.out,
		ReportWriter:            p.out,
	}
}

// finish completes the result of a build.
func (p *prepared) finish(id, d string, layers []oci.Layer) *Result {
	res := p.res
	res.ID, res.Digest, res.Layers = id, d, layers
	res.Seconds = time.Since(p.start).Seconds()
	p.log.WithFields(logrus.Fields{"id": id, "digest": d, "seconds": fmt.Sprintf("%.1f", res.Seconds)}).Infof("built %s", first(res.Names))
	return res
}

// first is names[0], or "" (an image without a name).
func first(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// rest is names after the first.
func rest(names []string) []string {
	if len(names) < 2 {
		return nil
	}
	return names[1:]
}

// pinTime picks the image's timestamp and revision: options first, then the
// definition, then git.
func pinTime(def *images.Definition, opts BuildOptions, log logrus.FieldLogger) (time.Time, string) {
	gitTime, gitRev := gitInfo(def.Dir())
	revision := opts.Revision
	if revision == "" {
		revision = gitRev
	}
	switch {
	case opts.SourceDateEpoch != nil:
		return *opts.SourceDateEpoch, revision
	case def.SourceDateEpoch != nil:
		return time.Unix(*def.SourceDateEpoch, 0).UTC(), revision
	case !gitTime.IsZero():
		return gitTime, revision
	}
	log.Warn("no sourceDateEpoch in the definition and no git history: timestamps pinned to 1970-01-01")
	return time.Unix(0, 0).UTC(), revision
}

// gitInfo returns the time and hash of the last commit that touched dir.
func gitInfo(dir string) (time.Time, string) {
	if dir == "" {
		return time.Time{}, ""
	}
	out, err := exec.Command("git", "-C", dir, "log", "-1", "--format=%ct %H", "--", ".").Output()
	if err != nil {
		return time.Time{}, ""
	}
	ts, hash, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	secs, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil {
		return time.Time{}, ""
	}
	return time.Unix(secs, 0).UTC(), hash
}

// placeFile puts a cached source into the build context, hard-linked when
// it can be (same file system), copied otherwise.
func placeFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
