package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/images"
	"github.com/containers/buildah"
	"github.com/containers/buildah/define"
	"github.com/containers/buildah/imagebuildah"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

// BuildOptions tune Build. Store and Fetcher are required.
type BuildOptions struct {
	Store   storage.Store
	Fetcher *Fetcher
	// Registries says how base images are pulled.
	Registries RegistryOptions
	// SourceDateEpoch overrides the definition's timestamp. When neither
	// sets one, the commit time of the last git commit touching the
	// definition folder is used, then 0.
	SourceDateEpoch *time.Time
	// Revision is recorded as org.opencontainers.image.revision; empty means
	// the last git commit touching the definition folder, if any.
	Revision string
	// ExtraTags are added to the definition's tags.
	ExtraTags []string
	// NoCache rebuilds every step.
	NoCache bool
	// TmpDir holds the build context and big temporary files; "" means os.TempDir().
	TmpDir string
	// Output receives the build's step-by-step output (never stdout when
	// the caller prints JSON there).
	Output io.Writer
	// Log receives structured progress.
	Log logrus.FieldLogger
}

// BaseInfo is the image a build started from.
type BaseInfo struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// Result describes a built image.
type Result struct {
	ID      string `json:"id"`
	Digest  string `json:"digest"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Tags are the image's tags; Names the local references carrying them.
	Tags     []string  `json:"tags"`
	Names    []string  `json:"names"`
	Base     BaseInfo  `json:"base"`
	Layers   []Layer   `json:"layers"`
	Sources  []Fetched `json:"sources"`
	Created  string    `json:"created"`
	Revision string    `json:"revision,omitempty"`
	Seconds  float64   `json:"seconds"`
}

// Build fetches and checks def's sources, then builds def's Containerfile
// into opts.Store with buildah (chroot isolation, layer cache on,
// timestamps pinned so that the same inputs give the same digest).
func Build(ctx context.Context, def *images.Definition, opts BuildOptions) (*Result, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	host := runtime.GOOS + "/" + runtime.GOARCH
	if !slices.Contains(def.Platforms, host) {
		return nil, inputErrorf("definition %s supports %s, not this machine's %s", def.Path, strings.Join(def.Platforms, ", "), host)
	}
	work, err := os.MkdirTemp(opts.TmpDir, "agentforge-build-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", def.Name, err)
	}
	defer os.RemoveAll(work)
	contextDir := filepath.Join(work, "context")
	if err := os.CopyFS(contextDir, def.FS); err != nil {
		return nil, fmt.Errorf("build %s: copy definition to the build context: %w", def.Name, err)
	}

	res := &Result{Name: def.Name, Version: def.Version}
	for _, src := range def.Sources {
		f, err := opts.Fetcher.Fetch(ctx, src)
		if err != nil {
			return nil, err
		}
		if err := placeFile(f.Path, filepath.Join(contextDir, filepath.FromSlash(src.Dest))); err != nil {
			return nil, fmt.Errorf("build %s: place source %s: %w", def.Name, src.Name, err)
		}
		res.Sources = append(res.Sources, f)
	}

	epoch, revision := pinTime(def, opts, log)
	res.Created = epoch.UTC().Format(time.RFC3339)
	res.Revision = revision

	sys, err := opts.Registries.systemContext(work, filepath.Join(opts.Store.GraphRoot(), "cache"))
	if err != nil {
		return nil, err
	}
	res.Base = BaseInfo{Ref: def.Base.Ref()}
	if def.Base.Image != "scratch" {
		log.Infof("base image %s", def.Base.Ref())
		id, err := buildah.Pull(ctx, def.Base.Ref(), buildah.PullOptions{
			Store: opts.Store, SystemContext: sys, ReportWriter: out, SignaturePolicyPath: sys.SignaturePolicyPath,
			PullPolicy: define.PullIfMissing, MaxRetries: 3, RetryDelay: 2 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("pull base image %s: %w", def.Base.Ref(), err)
		}
		img, err := opts.Store.Image(id)
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", def.Base.Ref(), err)
		}
		res.Base.Digest = img.Digest.String()
		if def.Base.Digest != "" && img.Digest.String() != def.Base.Digest && !slices.Contains(img.Digests, digest.Digest(def.Base.Digest)) {
			return nil, &IntegrityError{What: "base image " + def.Base.Image, Check: "digest", Expected: def.Base.Digest, Actual: img.Digest.String()}
		}
	}

	tags := append(slices.Clone(def.Tags), opts.ExtraTags...)
	for _, t := range tags {
		res.Tags = append(res.Tags, t)
		res.Names = append(res.Names, "localhost/"+def.Name+":"+t)
	}
	labels := []string{}
	for _, k := range sortedKeys(def.Labels) {
		labels = append(labels, k+"="+def.Labels[k])
	}
	labels = append(labels,
		"org.opencontainers.image.version="+def.Version,
		"org.opencontainers.image.created="+res.Created,
	)
	if def.Base.Image != "scratch" {
		labels = append(labels,
			"org.opencontainers.image.base.name="+def.Base.Image,
			"org.opencontainers.image.base.digest="+res.Base.Digest)
	}
	if revision != "" {
		labels = append(labels, "org.opencontainers.image.revision="+revision)
	}
	args := map[string]string{"BASE_IMAGE": def.Base.Ref()}
	for k, v := range def.Args {
		args[k] = v
	}

	log.WithFields(logrus.Fields{"definition": def.Path, "tags": strings.Join(tags, ","), "created": res.Created}).Infof("building %s", def.Name)
	bo := define.BuildOptions{
		ContextDirectory:        contextDir,
		Isolation:               define.IsolationChroot,
		PullPolicy:              define.PullIfMissing,
		Args:                    args,
		Labels:                  labels,
		Output:                  res.Names[0],
		AdditionalTags:          res.Names[1:],
		OutputFormat:            define.OCIv1ImageManifest,
		Layers:                  true,
		NoCache:                 opts.NoCache,
		RemoveIntermediateCtrs:  true,
		ForceRmIntermediateCtrs: true,
		CommonBuildOpts:         &define.CommonBuildOptions{Ulimit: currentUlimits()},
		SystemContext:           sys,
		SignaturePolicyPath:     sys.SignaturePolicyPath,
		SourceDateEpoch:         &epoch,
		RewriteTimestamp:        true,
		MaxPullPushRetries:      3,
		PullPushRetryDelay:      2 * time.Second,
		Out:                     out,
		Err:                     out,
		ReportWriter:            out,
	}
	id, _, err := imagebuildah.BuildDockerfiles(ctx, opts.Store, bo, filepath.Join(contextDir, filepath.FromSlash(def.Containerfile)))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", def.Name, err)
	}
	res.ID = id
	ref, err := istorage.Transport.NewStoreReference(opts.Store, nil, id)
	if err != nil {
		return nil, fmt.Errorf("built image %s: %w", id, err)
	}
	d, layers, err := layersOf(ctx, nil, ref)
	if err != nil {
		return nil, fmt.Errorf("built image %s: %w", id, err)
	}
	res.Digest, res.Layers = d.String(), layers
	res.Seconds = time.Since(start).Seconds()
	log.WithFields(logrus.Fields{"id": id, "digest": res.Digest, "seconds": fmt.Sprintf("%.1f", res.Seconds)}).Infof("built %s", res.Names[0])
	return res, nil
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
