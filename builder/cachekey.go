package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/containers/buildah/define"
	docker "github.com/fsouza/go-dockerclient"
	"github.com/openshift/imagebuilder"
	"github.com/openshift/imagebuilder/dockerfile/parser"
	"go.podman.io/common/libimage"
	"go.podman.io/common/pkg/config"
	"go.podman.io/image/v5/docker/reference"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// cacheScheme names what goes into a layer cache key. Change it whenever
// that changes, or when buildOptions changes in a way that changes what a
// step produces: entries made under another scheme are then never found,
// rather than found and wrong.
const cacheScheme = "agentforge-layer-cache/1"

// cacheStep is one instruction of a Containerfile as the layer cache sees
// it: where it is, and the key of its result.
type cacheStep struct {
	// Stage is the stage's index, StageName its name (AS …, or the index).
	Stage     int
	StageName string
	// Index is the step's place in its stage, from 0; Line its first line
	// in the Containerfile (0 for the LABEL step buildah appends).
	Index int
	Line  int
	// Instruction is the step's text, for logs.
	Instruction string
	// Key is the hex sha256 of every input of the step and of every step
	// before it in the stage (see keyPlan); "" when the step cannot be
	// cached, and then Why says why.
	Key string
	Why string
}

// cacheStage is one stage of a Containerfile as the layer cache sees it:
// what it starts from.
type cacheStage struct {
	Position int
	Name     string
	// Base is "scratch", "stage" (BaseName is that stage's name) or
	// "image" (BaseID is its ID in the store, "" when it was not there
	// before the build).
	Base             string
	BaseName, BaseID string
	// Steps is how many steps the stage has.
	Steps int
}

// keyInput is what keyPlan needs besides the Containerfile.
type keyInput struct {
	// Containerfile and ContextDir as the build uses them (absolute).
	Containerfile, ContextDir string
	// Args are the build arguments; Labels the labels buildah appends as a
	// last LABEL step, in its order.
	Args   map[string]string
	Labels []string
	// Platform is the target; Epoch the pinned timestamp (timestamps are
	// clamped to it, buildah's SourceDateEpoch with RewriteTimestamp).
	Platform oci.Platform
	Epoch    time.Time
	// BaseRef and BaseID are the definition's base image and the ID it
	// was pulled as ("" for scratch). Other FROM images are looked up in
	// Store.
	BaseRef, BaseID string
	Store           storage.Store
}

// keyPlan walks the Containerfile as buildah will (the same parser, the same
// argument and environment evaluation: github.com/openshift/imagebuilder,
// as imagebuildah's buildDockerfilesOnce and StageExecutor do) and computes
// each step's cache key.
//
// A key is the sha256 of, in order:
//
//   - for a stage's first step, the stage's start: cacheScheme, buildah's
//     version, the target platform, the manifest format, the pinned
//     timestamp, the FROM line, and what it names: the base image's ID
//     (its config digest), "scratch", or the key of the last step of the
//     stage named; for a later step, the key of the step before it;
//   - the step's text as written (instruction, flags, arguments, here-
//     documents);
//   - every build argument in scope after the step with its value, and the
//     environment the step runs with (arguments, ENV values, the base
//     image's environment): so a changed argument changes the key of every
//     step from its ARG on, and of none before it (docker's and
//     buildkit's rule for when a build argument invalidates the cache);
//   - for COPY and ADD, the flags as evaluated and the content of every
//     source: from the build context, each file's path, type, mode, size,
//     sha256 and clamped modification time, symbolic links' targets, and
//     the context's .containerignore/.dockerignore; from another stage,
//     that stage's last key; from an image, its digest (an image not
//     pinned by digest, and a URL without --checksum, cannot be cached);
//   - for RUN, the arguments, network mode and mounts as evaluated, and for
//     every bind mount the content of its source (the sha256 of each file,
//     or the key of the stage it comes from).
//
// buildah's own key (imagebuildah.StageExecutor.generateCacheKey and
// getCreatedBy, stage_executor.go:2149 and :1904 in v1.42.2) covers a RUN
// step's resolved build arguments and its bind-mounted context files
// (generatePathChecksum, util.go:45), but records ENV, WORKDIR, USER,
// LABEL and COPY destinations unexpanded (node.Original, :2015): with
// "ARG V; ENV X=$V" a changed V is still a cache hit and the image keeps
// the old X (containers/buildah#5575, open; reproduced here with v1.42.2),
// and the target platform is not in it, so amd64 and arm64 results of a
// FROM scratch stage share one tag. Hence a key of our own.
func keyPlan(ctx context.Context, in keyInput) ([]cacheStep, []cacheStage, error) {
	content, err := os.ReadFile(in.Containerfile)
	if err != nil {
		return nil, nil, err
	}
	root, err := imagebuilder.ParseDockerfile(bytes.NewReader(content))
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", filepath.Base(in.Containerfile), err)
	}
	pl := in.Platform
	b := imagebuilder.NewBuilder(in.Args)
	// As buildDockerfilesOnce: the target platform's TARGET* defaults and
	// containers.conf's default environment.
	b.BuiltinArgDefaults["TARGETOS"] = pl.OS
	b.BuiltinArgDefaults["TARGETARCH"] = pl.Arch
	b.BuiltinArgDefaults["TARGETVARIANT"] = pl.Variant
	b.BuiltinArgDefaults["TARGETPLATFORM"] = pl.String()
	if cc, err := config.Default(); err == nil {
		b.Env = append(cc.GetDefaultEnv(), b.Env...)
	}
	stages, err := imagebuilder.NewStages(root, b)
	if err != nil {
		return nil, nil, fmt.Errorf("stages of %s: %w", filepath.Base(in.Containerfile), err)
	}
	k := &keyer{in: in, ignore: ignoreFiles(in.ContextDir), last: map[string]string{}, configs: map[string]*docker.Config{}}
	var steps []cacheStep
	var infos []cacheStage
	for i, st := range stages {
		s, info, err := k.stage(ctx, st, i == len(stages)-1)
		if err != nil {
			return nil, nil, fmt.Errorf("stage %s: %w", st.Name, err)
		}
		steps = append(steps, s...)
		infos = append(infos, info)
	}
	return steps, infos, nil
}

// keyer computes the keys of one Containerfile's stages, in order.
type keyer struct {
	in     keyInput
	ignore []byte
	// last holds each stage's last key by name and by index ("" when
	// that stage cannot be cached); configs its final configuration.
	last    map[string]string
	configs map[string]*docker.Config
}

func (k *keyer) stage(ctx context.Context, st imagebuilder.Stage, final bool) ([]cacheStep, cacheStage, error) {
	info := cacheStage{Position: st.Position, Name: st.Name}
	ib, node := st.Builder, st.Node
	var fromLine string
	if len(node.Children) > 0 {
		fromLine = node.Children[0].Original
	}
	from, err := ib.From(node) // strips FROM from node.Children
	if err != nil {
		return nil, info, err
	}
	if final && len(k.in.Labels) > 0 {
		// As imagebuildah's Executor.buildStage (executor.go:537): the
		// labels given through the API become a last LABEL line.
		var line string
		for _, spec := range k.in.Labels {
			key, value, _ := strings.Cut(spec, "=")
			if key != "" {
				line += fmt.Sprintf(" %q=%q", key, value)
			}
		}
		if line != "" {
			extra, err := imagebuilder.ParseDockerfile(strings.NewReader("LABEL" + line + "\n"))
			if err != nil {
				return nil, info, err
			}
			for _, c := range extra.Children {
				c.StartLine, c.EndLine = 0, 0
			}
			node.Children = append(node.Children, extra.Children...)
		}
	}

	h := newKeyHash()
	h.add("scheme", cacheScheme)
	h.add("buildah", define.Version)
	h.add("platform", k.in.Platform.String())
	h.add("format", define.OCIv1ImageManifest)
	h.add("epoch", strconv.FormatInt(k.in.Epoch.Unix(), 10), "clamp-mtime")
	h.add("from", fromLine)
	key, why := "", ""
	var baseCfg *docker.Config
	switch stageKey, isStage := k.last[from]; {
	case isStage:
		info.Base, info.BaseName = "stage", from
		if stageKey == "" {
			why = "FROM stage " + from + ", which cannot be cached"
		}
		h.add("base", "stage", stageKey)
		baseCfg = k.configs[from]
	case from == "scratch":
		info.Base = "scratch"
		h.add("base", "scratch")
		baseCfg = &docker.Config{}
	default:
		id, cfg, err := k.baseImage(ctx, from)
		if err != nil {
			return nil, info, err
		}
		if id == "" {
			why = "FROM " + from + ": not in local storage before the build"
		}
		info.Base, info.BaseName, info.BaseID = "image", from, id
		h.add("base", "image", id)
		baseCfg = cfg
	}
	if why == "" {
		key = h.sum()
	}
	if baseCfg != nil {
		// As StageExecutor.prepare (stage_executor.go:1050): the
		// configuration names the image it starts from.
		cfg := *baseCfg
		cfg.Image = from
		if err := ib.FromImage(&docker.Image{Config: &cfg}, node); err != nil {
			return nil, info, err
		}
	}

	var steps []cacheStep
	for i, child := range node.Children {
		s := cacheStep{Stage: st.Position, StageName: st.Name, Index: i, Line: child.StartLine, Instruction: instructionText(child)}
		step := ib.Step()
		if err := step.Resolve(child); err != nil {
			return nil, info, fmt.Errorf("line %d: %w", child.StartLine, err)
		}
		env := slices.Clone(step.Env)
		rec := &stepRecorder{}
		if err := ib.Run(step, rec, false); err != nil {
			return nil, info, fmt.Errorf("line %d: %w", child.StartLine, err)
		}
		if key != "" {
			h := newKeyHash()
			h.add("previous", key)
			h.add("instruction", child.Original)
			for _, d := range child.Heredocs {
				h.add("heredoc", d.Name, d.Content, strconv.FormatBool(d.Expand), strconv.FormatBool(d.Chomp))
			}
			args := ib.Arguments()
			slices.Sort(args)
			h.add("args", args...)
			slices.Sort(env)
			h.add("env", env...)
			if why = k.inputs(h, rec); why == "" {
				key = h.sum()
			} else {
				key = ""
			}
		}
		s.Key, s.Why = key, why
		steps = append(steps, s)
	}
	name := strconv.Itoa(st.Position)
	k.last[name], k.last[st.Name] = key, key
	cfg := ib.Config()
	cfg.Env = append(slices.Clone(ib.Env), cfg.Env...)
	k.configs[name], k.configs[st.Name] = cfg, cfg
	info.Steps = len(steps)
	return steps, info, nil
}

// baseImage finds a FROM image in the store: its ID and configuration, or
// "" when it is not there (buildah will pull it during the build, too late
// for a key).
func (k *keyer) baseImage(ctx context.Context, name string) (string, *docker.Config, error) {
	id := ""
	switch {
	case name == k.in.BaseRef && k.in.BaseID != "":
		id = k.in.BaseID
	case k.in.Store == nil:
		return "", nil, nil
	default:
		rt, err := libimage.RuntimeFromStore(k.in.Store, nil)
		if err != nil {
			return "", nil, err
		}
		pl := k.in.Platform
		img, _, err := rt.LookupImage(name, &libimage.LookupImageOptions{OS: pl.OS, Architecture: pl.Arch, Variant: pl.Variant})
		if err != nil {
			return "", nil, nil
		}
		id = img.ID()
	}
	ref, err := istorage.Transport.NewStoreReference(k.in.Store, nil, id)
	if err != nil {
		return "", nil, err
	}
	img, err := ref.NewImage(ctx, nil)
	if err != nil {
		return "", nil, fmt.Errorf("base image %s: %w", name, err)
	}
	defer img.Close()
	oci, err := img.OCIConfig(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("base image %s: %w", name, err)
	}
	c := oci.Config
	return id, &docker.Config{Env: c.Env, User: c.User, WorkingDir: c.WorkingDir, Shell: nil, OnBuild: onBuild(img)}, nil
}

// onBuild reads the ONBUILD triggers a docker-format image may carry (OCI
// configurations have none).
func onBuild(img types.Image) []string {
	if ib := img.ConfigInfo(); ib.Digest == "" {
		return nil
	}
	raw, err := img.ConfigBlob(context.Background())
	if err != nil {
		return nil
	}
	var v struct {
		Config struct {
			OnBuild []string `json:"OnBuild"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	return v.Config.OnBuild
}

// inputs adds what a step copies or mounts to h, or says why the step
// cannot be cached.
func (k *keyer) inputs(h *keyHash, rec *stepRecorder) string {
	if len(rec.copies) > 0 {
		h.add("excludes", rec.excludes...)
	}
	for _, c := range rec.copies {
		h.add("copy", c.From, c.Dest, c.Chown, c.Chmod, c.Checksum, strconv.FormatBool(c.Download),
			strconv.FormatBool(c.Link), strconv.FormatBool(c.Parents), strconv.FormatBool(c.KeepGitDir))
		h.add("copy-excludes", c.Excludes...)
		for _, f := range c.Files {
			h.add("copy-file", f.Name, f.Data)
		}
		switch {
		case c.From != "":
			if why := k.fromSource(h, c.From, "COPY --from="+c.From); why != "" {
				return why
			}
			h.add("copy-sources", c.Src...)
			continue
		case c.FromFS:
			return "copies from the build machine's file system"
		}
		h.add("ignore-files", string(k.ignore))
		for _, src := range c.Src {
			switch {
			case isURL(src):
				if c.Checksum == "" {
					return "ADD " + src + " without --checksum"
				}
				h.add("url", src, c.Checksum)
			case strings.HasPrefix(src, "git@") || strings.HasSuffix(src, ".git"):
				return "ADD of a git repository"
			default:
				if why := k.contextPath(h, src, true); why != "" {
					return why
				}
			}
		}
	}
	for _, r := range rec.runs {
		h.add("run", strconv.FormatBool(r.Shell), r.Network)
		h.add("run-args", r.Args...)
		for _, f := range r.Files {
			h.add("run-file", f.Name, f.Data)
		}
		for _, m := range r.Mounts {
			h.add("mount", m)
			opts := mountOptions(m)
			typ := opts["type"]
			if typ == "" {
				typ = "bind"
			}
			if typ != "bind" {
				// cache, tmpfs, secret, ssh: not inputs of the result (a
				// secret's content must not be hashed into a tag).
				continue
			}
			src := opts["source"]
			if src == "" {
				src = opts["src"]
			}
			if src == "" {
				src = "."
			}
			if from := opts["from"]; from != "" {
				if why := k.fromSource(h, from, "RUN --mount from="+from); why != "" {
					return why
				}
				h.add("mount-source", src)
				continue
			}
			if why := k.contextPath(h, src, false); why != "" {
				return why
			}
		}
	}
	return ""
}

// fromSource adds a COPY --from or mount from= source: a stage's last key,
// or an image's digest.
func (k *keyer) fromSource(h *keyHash, from, what string) string {
	if key, ok := k.last[from]; ok {
		if key == "" {
			return what + ": that stage cannot be cached"
		}
		h.add("stage", key)
		return ""
	}
	if named, err := reference.ParseNormalizedNamed(from); err == nil {
		if d, ok := named.(reference.Digested); ok {
			h.add("image", d.Digest().String())
			return ""
		}
	}
	return what + ": an image not pinned by digest"
}

// contextPath adds the content of src (a path or glob in the build
// context) to h. withTimes adds modification times, clamped to the epoch
// as buildah clamps them in a layer (a COPY keeps them; a bind mount does
// not).
func (k *keyer) contextPath(h *keyHash, src string, withTimes bool) string {
	rel := filepath.Clean("/" + src)[1:]
	if rel == "" {
		rel = "."
	}
	pattern := filepath.Join(k.in.ContextDir, rel)
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return fmt.Sprintf("source %q: %v", src, err)
	}
	h.add("source", src, strconv.Itoa(len(matches)))
	for _, m := range matches {
		if err := hashTree(h, k.in.ContextDir, m, withTimes, k.in.Epoch); err != nil {
			return fmt.Sprintf("source %q: %v", src, err)
		}
	}
	return ""
}

// hashTree adds every entry under path (itself included) to h: its path
// relative to root, type and permissions, and the sha256 and size of a
// regular file or the target of a symbolic link.
func hashTree(h *keyHash, root, path string, withTimes bool, epoch time.Time) error {
	buf := make([]byte, 1<<20)
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fields := []string{filepath.ToSlash(rel), info.Mode().Type().String(), strconv.FormatUint(uint64(info.Mode().Perm()), 8)}
		if withTimes {
			t := info.ModTime()
			if t.After(epoch) {
				t = epoch
			}
			fields = append(fields, strconv.FormatInt(t.Unix(), 10))
		}
		switch {
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			sum := sha256.New()
			n, err := io.CopyBuffer(sum, f, buf)
			f.Close()
			if err != nil {
				return err
			}
			fields = append(fields, strconv.FormatInt(n, 10), hex.EncodeToString(sum.Sum(nil)))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fields = append(fields, target)
		}
		h.add("entry", fields...)
		return nil
	})
}

// ignoreFiles is the content of the context's ignore files, which decide
// what COPY . takes.
func ignoreFiles(dir string) []byte {
	var out []byte
	for _, name := range []string{".containerignore", ".dockerignore"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			out = append(out, name...)
			out = append(out, 0)
			out = append(out, data...)
			out = append(out, 0)
		}
	}
	return out
}

// mountOptions parses a --mount value (type=bind,source=x,target=y).
func mountOptions(m string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(m, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out[strings.ToLower(strings.TrimSpace(k))] = v
	}
	return out
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// instructionText is a step's first line, shortened for logs.
func instructionText(n *parser.Node) string {
	s, _, _ := strings.Cut(n.Original, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// stepRecorder is an imagebuilder.Executor that runs nothing: it records
// what a step copies and runs, with its arguments evaluated.
type stepRecorder struct {
	excludes []string
	copies   []imagebuilder.Copy
	runs     []imagebuilder.Run
}

func (r *stepRecorder) Preserve(string) error                                    { return nil }
func (r *stepRecorder) EnsureContainerPath(string) error                         { return nil }
func (r *stepRecorder) EnsureContainerPathAs(string, string, *os.FileMode) error { return nil }
func (r *stepRecorder) Copy(excludes []string, copies ...imagebuilder.Copy) error {
	r.excludes = slices.Clone(excludes)
	r.copies = append(r.copies, copies...)
	return nil
}
func (r *stepRecorder) Run(run imagebuilder.Run, _ docker.Config) error {
	r.runs = append(r.runs, run)
	return nil
}
func (r *stepRecorder) UnrecognizedInstruction(step *imagebuilder.Step) error {
	return fmt.Errorf("unknown instruction %q", step.Command)
}

// keyHash is a sha256 over labelled, length-prefixed fields, so that no two
// different field lists hash the same bytes.
type keyHash struct{ h hash.Hash }

func newKeyHash() *keyHash { return &keyHash{h: sha256.New()} }

func (k *keyHash) add(label string, fields ...string) {
	k.write(label)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(fields)))
	k.h.Write(n[:])
	for _, f := range fields {
		k.write(f)
	}
}

func (k *keyHash) write(s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	k.h.Write(n[:])
	io.WriteString(k.h, s)
}

func (k *keyHash) sum() string { return hex.EncodeToString(k.h.Sum(nil)) }
