package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	cosign "github.com/agentforge/agentforge/publisher/sign"
	"github.com/containers/buildah/define"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

// LayerCache shares the results of build steps between builds through
// registries, so that a build in a fresh store (a Kubernetes pod) does not
// start cold: with To, every step the build runs is pushed to To, tagged
// with the step's cache key; with From, each step's key is looked up in
// each repository in turn, and the first entry found is pulled into the
// store, where buildah finds it as a cached step instead of running the
// step.
//
// The key covers every input of the step (see keyPlan): its text, the
// build arguments in scope, the content of what COPY and ADD take and of
// every file bind-mounted into a RUN, the steps before it, the base image
// and the target platform. Entries are the step images' own bytes
// (uncompressed layers, the manifest unchanged), so a build from the cache
// gives the digest a build without it gives.
//
// On use, an entry is read by tag, then pulled by the digest of the
// manifest read (c/image checks every blob against it and every layer
// against the configuration), and must extend the image of the step
// before it (the same history and layers, one more history entry) on the
// target platform. With Verifier set, an entry must also carry a cosign
// signature by that key (publisher/sign); one that does not is ignored,
// and the log says so. With Signer set, every entry pushed is signed.
//
// Registry mirrors (image.Registries.Mirrors) apply to the From
// repositories as to any pull: a mirror's location is tried first, then
// the repository itself. Credentials, CA and insecure hosts are the
// build's registry configuration.
//
// Why not buildah's own CacheFrom and CacheTo: its key misses build
// arguments in every instruction but RUN and the target platform (see
// keyPlan), it can sign only with GPG (define.BuildOptions.SignBy, not
// cosign keys), it pulls whatever a tag names with no key to check it
// against and logs a failed pull only at debug level (pullCache,
// stage_executor.go:2241), and its pushes compress layers, which changes
// the manifest and so the digest of an image built from them.
type LayerCache struct {
	// From are the repositories (host/path) looked up, in order.
	From []reference.Named
	// To is the repository entries are pushed to; nil for none.
	To reference.Named
	// Signer signs every entry pushed (cosign format); nil for none.
	Signer cosign.Signer
	// Verifier, when set, makes From ignore every entry without a valid
	// signature by it.
	Verifier cosign.Verifier
}

func (c *LayerCache) enabled() bool { return c != nil && (len(c.From) > 0 || c.To != nil) }

// ParseCacheRepository parses a cache repository: host/path, with no tag
// or digest ("docker://" in front is accepted).
func ParseCacheRepository(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimPrefix(s, "docker://"))
	if err != nil {
		return nil, errs.Inputf("cache repository %q: %w", s, err)
	}
	if _, ok := named.(reference.Tagged); ok {
		return nil, errs.Inputf("cache repository %q: give a repository without a tag (entries are tagged with their keys)", s)
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, errs.Inputf("cache repository %q: give a repository without a digest", s)
	}
	if err := oci.CheckPort(reference.Domain(named)); err != nil {
		return nil, errs.Inputf("cache repository %q: %w", s, err)
	}
	return named, nil
}

// ParseLayerCache makes a LayerCache from repository names (see
// ParseCacheRepository) and a cosign public key file; names are how the
// caller's user knows the three settings (flags, file keys), for errors.
// It is nil when from and to are both empty. Everything wrong is
// errs.ErrInput.
func ParseLayerCache(from []string, to, verifyKey string, names [3]string) (*LayerCache, error) {
	fromName, toName, keyName := names[0], names[1], names[2]
	if verifyKey != "" && len(from) == 0 {
		return nil, errs.Inputf("%s checks the entries of %s: give %s too", keyName, fromName, fromName)
	}
	if len(from) == 0 && to == "" {
		return nil, nil
	}
	c := &LayerCache{}
	for _, s := range from {
		r, err := ParseCacheRepository(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fromName, err)
		}
		c.From = append(c.From, r)
	}
	if to != "" {
		r, err := ParseCacheRepository(to)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", toName, err)
		}
		c.To = r
	}
	if verifyKey != "" {
		k, err := cosign.LoadPublicKey(verifyKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyName, err)
		}
		c.Verifier = k
	}
	return c, nil
}

// Step statuses in a CacheReport.
const (
	// CacheHit is a step whose image came from a cache repository.
	CacheHit = "hit"
	// CacheBuilt is a step the build ran.
	CacheBuilt = "built"
	// CacheLocal is a step buildah found in the store's own cache (an
	// image made by an earlier build in the same store). It is not
	// pushed: buildah's local key is weaker than ours (see keyPlan).
	CacheLocal = "local"
	// CacheNotRun is a step the build did not reach.
	CacheNotRun = "not run"
	// CacheUnknown is a step whose image could not be told (see
	// CacheReport.Unmatched).
	CacheUnknown = "unknown"
)

// CacheReport says what the layer cache did in one build.
type CacheReport struct {
	// Off says why the cache was not used at all (a Containerfile whose
	// steps could not be planned); buildah then says what is wrong with
	// it, if anything.
	Off   string      `json:"off,omitempty"`
	Steps []CacheStep `json:"steps"`
	// Hits, Built and Pushed count steps.
	Hits   int `json:"hits"`
	Built  int `json:"built"`
	Pushed int `json:"pushed"`
	// PullSeconds and PushSeconds are the time spent reading and pulling
	// entries before the build, and pushing and signing them after it.
	PullSeconds float64 `json:"pullSeconds"`
	PushSeconds float64 `json:"pushSeconds"`
	// Unmatched says why the steps could not be matched to the images
	// buildah reported; nothing is pushed then.
	Unmatched string `json:"unmatched,omitempty"`
	// Errors are the pushes and signatures that failed (the build itself
	// stands).
	Errors []string `json:"errors,omitempty"`
}

// CacheStep is one step of the Containerfile in a CacheReport.
type CacheStep struct {
	Stage string `json:"stage"`
	// Step counts from 1 within the stage; Line is where it is in the
	// Containerfile (0 for the LABEL step that the build's labels make).
	Step        int    `json:"step"`
	Line        int    `json:"line"`
	Instruction string `json:"instruction"`
	// Key is the step's cache key ("" when it cannot be cached, and then
	// Why says why).
	Key    string `json:"key,omitempty"`
	Why    string `json:"why,omitempty"`
	Status string `json:"status"`
	// Image is the ID of the step's image.
	Image string `json:"image,omitempty"`
	// From is repo@digest of the entry pulled; Pushed of the entry pushed.
	From   string `json:"from,omitempty"`
	Pushed string `json:"pushed,omitempty"`
	Signed bool   `json:"signed,omitempty"`
	// Ignored are the entries found for the key and not used, with why.
	Ignored []string `json:"ignored,omitempty"`
}

// layerCache is one build's use of a LayerCache.
type layerCache struct {
	cfg   *LayerCache
	store storage.Store
	hosts *remote.Hosts
	log   logrus.FieldLogger
	// progress shows entries' blobs as they are pulled and pushed.
	progress progress.Reporter
	steps    []cacheStep
	stages   []cacheStage
	// before are the images in the store before the build.
	before map[string]bool
	// pulled are the entries pulled (or found in the store), by step.
	pulled map[int]pulledEntry
	report *CacheReport
	rec    stepImages
	// platform is the build's target.
	platform oci.Platform
}

type pulledEntry struct {
	ref reference.Canonical
	id  string
}

// startCache plans the build's cache keys and, unless noCache, pulls the
// entries that match: the longest run of steps from each stage's start
// that some From repository has. A Containerfile it cannot plan disables
// the cache for this build, with a warning (buildah then reports what is
// wrong with it, if anything).
func startCache(ctx context.Context, cfg *LayerCache, in keyInput, hosts *remote.Hosts, noCache bool, bo *define.BuildOptions, log logrus.FieldLogger, rep progress.Reporter) (*layerCache, error) {
	start := time.Now()
	log = log.WithField("cache", true)
	steps, stages, err := keyPlan(ctx, in)
	if err != nil {
		log.Warnf("layer cache off for this build: %v", err)
		return &layerCache{report: &CacheReport{Off: err.Error()}}, nil
	}
	c := &layerCache{cfg: cfg, store: in.Store, hosts: hosts, log: log, progress: rep, steps: steps, stages: stages,
		before: map[string]bool{}, pulled: map[int]pulledEntry{}, report: &CacheReport{}, platform: in.Platform}
	for _, s := range steps {
		c.report.Steps = append(c.report.Steps, CacheStep{Stage: s.StageName, Step: s.Index + 1, Line: s.Line, Instruction: s.Instruction, Key: s.Key, Why: s.Why, Status: CacheNotRun})
	}
	imgs, err := in.Store.Images()
	if err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	for _, img := range imgs {
		c.before[img.ID] = true
	}
	if len(cfg.From) > 0 && !noCache {
		if cfg.Verifier == nil {
			// Nothing but buildah's own, weaker, match stands between
			// whoever can push to these repositories and what the steps
			// taken from them put in the image.
			log.Warnf("layer cache: entries of %s are used without a signature check: whoever can push there decides what the steps taken from it contain; give a verification key (--cache-verify-key)", joinNames(cfg.From))
		}
		if err := c.pull(ctx); err != nil {
			return nil, err
		}
	}
	c.report.PullSeconds = time.Since(start).Seconds()
	if err := c.rec.install(bo); err != nil {
		return nil, err
	}
	bo.Out = dropRecorderLines{bo.Out}
	return c, nil
}

// joinNames lists repositories for a message.
func joinNames(repos []reference.Named) string {
	names := make([]string, len(repos))
	for i, r := range repos {
		names[i] = r.Name()
	}
	return strings.Join(names, ", ")
}

// pull pulls, stage by stage, the entries of the longest run of steps from
// the stage's start that the cache has.
func (c *layerCache) pull(ctx context.Context) error {
	first := 0
	// stageImage is each stage's last image, when every step was pulled.
	stageImage := map[string]string{}
	for _, st := range c.stages {
		steps := c.steps[first : first+st.Steps]
		first += st.Steps
		prev, known := "", true
		switch st.Base {
		case "image":
			prev = st.BaseID
		case "stage":
			prev, known = stageImage[st.BaseName]
		}
		pulledAll := true
		for i, s := range steps {
			at := first - st.Steps + i
			if s.Key == "" {
				c.log.Infof("layer cache: %s and the steps after it cannot be cached: %s", stepName(s), s.Why)
				pulledAll = false
				break
			}
			e, err := c.find(ctx, at, s, prev, known)
			if err != nil {
				return err
			}
			if e == nil {
				pulledAll = false
				break
			}
			c.pulled[at] = *e
			prev, known = e.id, true
		}
		if pulledAll && known {
			stageImage[st.Name] = prev
			stageImage[fmt.Sprint(st.Position)] = prev
		}
	}
	return nil
}

// find looks s's key up in every From repository and pulls the first
// entry that passes the checks; nil when none does. prev is the image of
// the step before (the stage's base for its first step; "" for scratch),
// which the entry must extend; when !known, it is not checked.
func (c *layerCache) find(ctx context.Context, at int, s cacheStep, prev string, known bool) (*pulledEntry, error) {
	log, rep := c.log, &c.report.Steps[at]
	for _, repo := range c.cfg.From {
		for _, loc := range c.locations(repo) {
			raw, err := entryManifest(ctx, loc, s.Key, c.hosts, c.log)
			if errors.Is(err, errNoEntry) {
				continue
			}
			if err != nil {
				why := fmt.Sprintf("%s:%s: %v", loc, s.Key, err)
				log.Warnf("layer cache: ignoring %s for %s", why, stepName(s))
				rep.Ignored = append(rep.Ignored, why)
				continue
			}
			ref, err := reference.WithDigest(loc, digest.FromBytes(raw))
			if err != nil {
				return nil, err
			}
			if c.cfg.Verifier != nil {
				if _, err := cosign.VerifyClaims(ctx, ref, c.cfg.Verifier, cosign.Claims{cacheKeyClaim: s.Key}, cosign.Options{Hosts: c.hosts, Log: oci.Discard}); err != nil {
					why := fmt.Sprintf("%s (tag %s): no valid signature by the cache key: %v", ref, s.Key, err)
					log.Warnf("layer cache: ignoring %s for %s", why, stepName(s))
					rep.Ignored = append(rep.Ignored, why)
					continue
				}
			}
			id, fresh, err := c.fetch(ctx, ref, raw)
			if err == nil {
				err = c.check(ctx, id, prev, known)
				if err != nil && fresh {
					// Not used: buildah must not find it either.
					if _, derr := c.store.DeleteImage(id, true); derr != nil {
						log.Warnf("layer cache: remove %s: %v", id, derr)
					}
				}
			}
			if err != nil {
				why := fmt.Sprintf("%s: %v", ref, err)
				log.Warnf("layer cache: ignoring %s for %s", why, stepName(s))
				rep.Ignored = append(rep.Ignored, why)
				continue
			}
			log.WithFields(logrus.Fields{"entry": ref.String(), "image": id}).Infof("layer cache: hit for %s", stepName(s))
			rep.From = ref.String()
			return &pulledEntry{ref: ref, id: id}, nil
		}
	}
	log.Infof("layer cache: miss for %s (key %s)", stepName(s), s.Key)
	return nil, nil
}

// locations are where repo is read: through the registry mirror that
// matches it, if one does, then repo itself.
func (c *layerCache) locations(repo reference.Named) []reference.Named {
	var out []reference.Named
	if m := remote.Rewrite(c.hosts.Config().Mirrors, repo.Name()); m != repo.Name() {
		if named, err := reference.ParseNormalizedNamed(m); err == nil {
			out = append(out, named)
		} else {
			c.log.Warnf("layer cache: mirror of %s: %q: %v", repo, m, err)
		}
	}
	return append(out, repo)
}

// fetch pulls ref unless the store has its image already; fresh says
// whether it pulled.
func (c *layerCache) fetch(ctx context.Context, ref reference.Canonical, raw []byte) (id string, fresh bool, err error) {
	var m imgspecv1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", false, err
	}
	if m.Config.Digest.Validate() == nil {
		if img, err := c.store.Image(m.Config.Digest.Encoded()); err == nil {
			return img.ID, false, nil
		}
	}
	id, err = pullImage(ctx, c.store, ref, raw, c.hosts, c.log, c.progress)
	return id, err == nil, err
}

// check makes sure the image id is what a step after prev makes: for the
// build's platform, with prev's history and layers plus one history
// entry (and at most one layer).
func (c *layerCache) check(ctx context.Context, id, prev string, known bool) error {
	cfg, err := imageConfig(ctx, c.store, id)
	if err != nil {
		return err
	}
	want := c.platform
	if cfg.OS != want.OS || cfg.Architecture != want.Arch || cfg.Variant != want.Variant {
		return fmt.Errorf("an image for %s/%s, not %s", cfg.OS, cfg.Architecture, want)
	}
	if !known {
		return nil
	}
	var base imgspecv1.Image
	if prev != "" {
		p, err := imageConfig(ctx, c.store, prev)
		if err != nil {
			return err
		}
		base = *p
	}
	return extends(cfg, &base)
}

// extends reports how img fails to be a step on top of base.
func extends(img, base *imgspecv1.Image) error {
	if len(img.History) != len(base.History)+1 {
		return fmt.Errorf("%d history entries, want %d (one more than the step before)", len(img.History), len(base.History)+1)
	}
	for i, h := range base.History {
		if !sameHistory(h, img.History[i]) {
			return fmt.Errorf("history entry %d differs from the step before's", i+1)
		}
	}
	n := len(base.RootFS.DiffIDs)
	if len(img.RootFS.DiffIDs) < n || len(img.RootFS.DiffIDs) > n+1 || !slices.Equal(img.RootFS.DiffIDs[:n], base.RootFS.DiffIDs) {
		return fmt.Errorf("its layers do not extend the step before's")
	}
	return nil
}

func sameHistory(a, b imgspecv1.History) bool {
	return a.CreatedBy == b.CreatedBy && a.Comment == b.Comment && a.Author == b.Author && a.EmptyLayer == b.EmptyLayer &&
		(a.Created == nil) == (b.Created == nil) && (a.Created == nil || a.Created.Equal(*b.Created))
}

// finish learns which image each step ended with, pushes to To the ones
// the build made, and returns the report. It runs after a failed build
// too: the steps done before the failure are worth keeping.
func (c *layerCache) finish(ctx context.Context) *CacheReport {
	if c.report.Off != "" {
		return c.report
	}
	start := time.Now()
	ids := c.rec.list()
	if why := c.match(ctx, ids); why != "" {
		c.report.Unmatched = why
		c.log.Warnf("layer cache: %s; nothing is pushed", why)
		for i := range c.report.Steps {
			c.report.Steps[i].Status = CacheUnknown
		}
		return c.report
	}
	for i, id := range ids {
		rep := &c.report.Steps[i]
		rep.Image = id
		switch e, ok := c.pulled[i]; {
		case ok && e.id == id:
			rep.Status = CacheHit
			c.report.Hits++
		case c.before[id]:
			rep.Status = CacheLocal
		default:
			if ok {
				c.log.Warnf("layer cache: buildah did not use the entry pulled for %s (%s); it ran the step", stepName(c.steps[i]), e.ref)
				rep.From = ""
			}
			rep.Status = CacheBuilt
			c.report.Built++
		}
	}
	if c.cfg.To != nil {
		c.push(ctx)
	}
	c.report.PushSeconds = time.Since(start).Seconds()
	c.log.WithFields(logrus.Fields{"hits": c.report.Hits, "built": c.report.Built, "pushed": c.report.Pushed}).
		Infof("layer cache: %d of %d steps from the cache, %d built, %d pushed", c.report.Hits, len(c.steps), c.report.Built, c.report.Pushed)
	return c.report
}

// cacheKeyClaim is the claim of an entry's signature that names the key it
// was pushed under: the signature covers the entry's digest, and without
// it an entry signed for one key, tagged under another by whoever can
// push to the repository, would verify there too.
const cacheKeyClaim = "agentforge.io/cache-key"

// push pushes (and signs) every step the build ran that has a key.
func (c *layerCache) push(ctx context.Context) {
	for i := range c.report.Steps {
		rep := &c.report.Steps[i]
		if rep.Status != CacheBuilt || rep.Key == "" {
			continue
		}
		log := c.log
		dest, err := reference.WithTag(c.cfg.To, rep.Key)
		if err == nil {
			var d digest.Digest
			if d, err = pushImage(ctx, c.store, rep.Image, dest, c.hosts, c.log, c.progress); err == nil {
				ref, _ := reference.WithDigest(c.cfg.To, d)
				rep.Pushed = ref.String()
				c.report.Pushed++
				log.WithField("entry", rep.Pushed).Infof("layer cache: pushed %s", stepName(c.steps[i]))
				if c.cfg.Signer != nil {
					if _, err = cosign.SignClaims(ctx, ref, c.cfg.Signer, cosign.Claims{cacheKeyClaim: rep.Key}, cosign.Options{Hosts: c.hosts, Log: c.log}); err == nil {
						rep.Signed = true
					}
				}
			}
		}
		if err != nil {
			msg := fmt.Sprintf("%s: %v", stepName(c.steps[i]), err)
			log.Warnf("layer cache: %s", msg)
			c.report.Errors = append(c.report.Errors, msg)
		}
	}
}

// match checks that ids (the images buildah reported, in order) line up
// with the planned steps: each extends the one before in its stage, and a
// stage's first extends the stage's base when that is known. It returns
// why not, or "".
func (c *layerCache) match(ctx context.Context, ids []string) string {
	if len(ids) > len(c.steps) {
		return fmt.Sprintf("buildah reported %d step images for a Containerfile of %d steps", len(ids), len(c.steps))
	}
	last := map[string]string{} // stage -> its last image
	first := 0
	for _, st := range c.stages {
		var prev string
		known := true
		switch st.Base {
		case "image":
			prev = st.BaseID
			if prev == "" {
				known = false
			}
		case "stage":
			prev, known = last[st.BaseName]
		}
		for i := 0; i < st.Steps && first+i < len(ids); i++ {
			id := ids[first+i]
			if known {
				cfg, err := imageConfig(ctx, c.store, id)
				if err != nil {
					return fmt.Sprintf("step image %s: %v", id, err)
				}
				var base imgspecv1.Image
				if prev != "" {
					p, err := imageConfig(ctx, c.store, prev)
					if err != nil {
						return fmt.Sprintf("step image %s: %v", prev, err)
					}
					base = *p
				}
				if err := extends(cfg, &base); err != nil {
					return fmt.Sprintf("the image buildah reported for %s does not follow the step before: %v", stepName(c.steps[first+i]), err)
				}
			}
			prev, known = id, true
		}
		if first+st.Steps <= len(ids) && known {
			last[st.Name], last[fmt.Sprint(st.Position)] = prev, prev
		}
		first += st.Steps
	}
	return ""
}

// imageConfig reads the OCI configuration of the image id in store.
func imageConfig(ctx context.Context, store storage.Store, id string) (*imgspecv1.Image, error) {
	ref, err := istorage.Transport.NewStoreReference(store, nil, id)
	if err != nil {
		return nil, err
	}
	img, err := ref.NewImage(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return img.OCIConfig(ctx)
}

// stepName names a step for logs: stage, number and text.
func stepName(s cacheStep) string {
	return fmt.Sprintf("stage %s step %d (%s)", s.StageName, s.Index+1, s.Instruction)
}

// dropRecorderLines drops buildah's "--> Pushing cache" lines about the
// recorder repository (see stepImages) from the build output: nothing is
// pushed there. buildah writes each such line in one Write
// (stage_executor.go:1265).
type dropRecorderLines struct{ w io.Writer }

func (d dropRecorderLines) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), "--> Pushing cache ") && strings.Contains(string(p), recorderRepo) {
		return len(p), nil
	}
	return d.w.Write(p)
}
