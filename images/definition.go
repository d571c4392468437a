package images

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/agentforge/agentforge/images/errs"

	"go.podman.io/image/v5/docker/reference"
	"gopkg.in/yaml.v3"
)

// FileName is the name of the definition file inside a definition folder.
const FileName = "image.yaml"

// BaseImageArg is the build argument that carries the base image (base.image
// pinned by base.digest) to the Containerfile's FROM line; a definition
// cannot set it.
const BaseImageArg = "BASE_IMAGE"

// ImageID is what a tag template's {{image.id}} renders to before the
// build: the build replaces it with the built image's ID (ImageTag).
const ImageID = "{{image.id}}"

// ImageTag fills a tag's ImageID with the first 12 hex digits of the
// image's ID (its config digest, the same on every registry whatever the
// compression), as container tools show IDs. A tag without one is
// returned as it is.
func ImageTag(tag, id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return strings.ReplaceAll(tag, ImageID, id)
}

// Definition is a loaded, validated and rendered image definition: every
// template has been expanded and every override applied.
type Definition struct {
	// Name is the image name, e.g. "python-agent".
	Name string
	// Version is the image version, e.g. "0.6.0-rc0".
	Version string
	// Description is free text.
	Description string
	// Path names where the definition came from, for messages
	// ("images/python-agent", "builtin:python-agent").
	Path string
	// FS holds image.yaml, the Containerfile and the files it copies.
	FS fs.FS
	// Containerfile is the Containerfile's path inside FS.
	Containerfile string
	// Base is the image the build starts from.
	Base Base
	// Vars are the definition's variables after overrides.
	Vars map[string]string
	// Args are build arguments passed to the Containerfile.
	Args map[string]string
	// Labels are added to the image.
	Labels map[string]string
	// Tags are the rendered tags that, once published, name one image for
	// good: a registry's tag is never moved to another digest. A tag may
	// hold ImageID ("{{image.id}}"), filled in by the build with the
	// image's own ID (see ImageTag): a tag derived from the content, so
	// that every rebuild that changes the image has a tag of its own.
	Tags []string
	// RollingTags are rendered tags that follow the newest image
	// ("0.6.0-rc0", "latest"): a publish moves them on purpose, saying from
	// what to what.
	RollingTags []string
	// Platforms the definition supports, as os/arch[/variant].
	Platforms []string
	// Sources are files fetched (and checked) before the build.
	Sources []Source
	// SourceDateEpoch, when set, pins every timestamp in the image.
	SourceDateEpoch *int64
}

// Base is the image a definition builds on.
type Base struct {
	// Image is a reference by name and tag ("docker.io/library/ubuntu:24.04"),
	// or "scratch".
	Image string
	// Digest optionally pins Image ("sha256:…").
	Digest string
}

// Ref returns the reference to pull: Image pinned by Digest when there is one.
func (b Base) Ref() string {
	if b.Digest == "" || b.Image == "scratch" {
		return b.Image
	}
	return b.Image + "@" + b.Digest
}

// Source is a file the build needs from the network (or from a local path
// with a file:// URL), fetched and checked before the build and placed in the
// build context at Dest.
type Source struct {
	Name string
	URL  string
	// SHA256 is the expected hex digest of the file, when pinned.
	SHA256 string
	// Checksum, when set, names a published checksum file (such as Maven's
	// .sha1 sidecar) to check the download against.
	Checksum *Checksum
	// Signature, when set, names a detached OpenPGP signature to check.
	Signature *Signature
	// Dest is a slash-separated path relative to the build context.
	Dest string
	// Platforms, when set, limits the source to builds for these platforms
	// (a per-architecture download); empty means every platform. Two
	// sources may share a Dest when their platforms do not overlap.
	Platforms []string
}

// ForPlatform reports whether s is used when building for platform.
func (s Source) ForPlatform(platform string) bool {
	return len(s.Platforms) == 0 || slices.Contains(s.Platforms, platform)
}

// Checksum names a published checksum file.
type Checksum struct {
	URL       string
	Algorithm string // sha1, sha256 or sha512
}

// Signature names a detached OpenPGP signature and the key that must have made it.
type Signature struct {
	URL string
	// Fingerprint is the signing key's full fingerprint (40 hex digits, upper case).
	Fingerprint string
	// Key is an armored public key kept in the definition, if any; when empty
	// the key is fetched from a keyserver by Fingerprint.
	Key []byte
}

// DefinitionError is a problem with a definition, located at File:Line.
type DefinitionError struct {
	File string
	Line int
	Msg  string
}

func (e *DefinitionError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Is makes errors.Is(err, errs.ErrInput) true: a definition is input.
func (e *DefinitionError) Is(target error) bool { return target == errs.ErrInput }

var (
	nameRE        = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	tagRE         = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	hexRE         = regexp.MustCompile(`^[0-9a-f]{64}$`)
	fingerprintRE = regexp.MustCompile(`^[0-9A-F]{40}$`)
	argRE         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	varRE         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	platformRE    = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$`)
	fromBaseRE    = regexp.MustCompile(`(?mi)^\s*FROM\s+(?:--\S+\s+)*\$\{?BASE_IMAGE\}?(?:\s|$)`)
	placeholderRE = regexp.MustCompile(`\{\{\s*([^{}\s]*)\s*\}\}`)
)

// Load reads the definition in fsys (image.yaml at its root), applies the
// overrides (key=value, see Override) and validates and renders it. name is
// used in messages. Every problem found is reported, each as a
// *DefinitionError; errors.As finds the first.
func Load(fsys fs.FS, name string, overrides map[string]string) (*Definition, error) {
	file := path.Join(name, FileName)
	data, err := fs.ReadFile(fsys, FileName)
	if err != nil {
		return nil, &DefinitionError{File: file, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	var raw mapping[rawDefinition]
	if err := yaml.Unmarshal(data, &raw); err != nil {
		le := fixParserLine(convertYAMLError(err).(*lineError), data)
		return nil, &DefinitionError{File: file, Line: le.line, Msg: le.msg}
	}
	if raw.line == 0 {
		return nil, &DefinitionError{File: file, Msg: "empty definition"}
	}
	v := validator{file: file}
	v.noLinks(fsys, name)
	def := v.build(fsys, name, &raw, overrides)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return def, nil
}

// noLinks refuses symbolic links anywhere in the definition folder: the
// folder is the build context, and a link could point a source's dest, or
// a COPY, outside it.
func (v *validator) noLinks(fsys fs.FS, name string) {
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			v.errs = append(v.errs, &DefinitionError{File: path.Join(name, p), Msg: fmt.Sprintf("cannot read: %v", err)})
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			v.errs = append(v.errs, &DefinitionError{File: path.Join(name, p), Msg: "is a symbolic link: a definition folder is the build context and holds only regular files and folders"})
		}
		return nil
	})
}

// validator collects every problem of one definition.
type validator struct {
	file string
	errs []error
}

func (v *validator) errorf(line int, format string, args ...any) {
	v.errs = append(v.errs, &DefinitionError{File: v.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) build(fsys fs.FS, name string, m *mapping[rawDefinition], overrides map[string]string) *Definition {
	raw := &m.value
	v.applyOverrides(raw, overrides)
	def := &Definition{
		Path: name, FS: fsys,
		Name: raw.Name.Value, Version: raw.Version.Value, Description: raw.Description.Value,
		Vars: map[string]string{}, Args: map[string]string{}, Labels: map[string]string{},
	}
	if !nameRE.MatchString(def.Name) {
		v.errorf(lineOr(raw.Name.Line, m.line), "name %q: want lower-case letters, digits and . _ - separators", def.Name)
	}
	if def.Version == "" {
		v.errorf(lineOr(raw.Version.Line, m.line), "version is required")
	} else if !tagRE.MatchString(def.Version) {
		v.errorf(raw.Version.Line, "version %q cannot be used in a tag", def.Version)
	}

	def.Containerfile = raw.Containerfile.Value
	if def.Containerfile == "" {
		def.Containerfile = "Containerfile"
	}
	if cf, err := fs.ReadFile(fsys, def.Containerfile); err != nil {
		v.errorf(lineOr(raw.Containerfile.Line, m.line), "Containerfile %q not found in the definition folder", def.Containerfile)
	} else if !fromBaseRE.Match(cf) {
		v.errorf(lineOr(raw.Containerfile.Line, m.line), "%s has no \"FROM ${BASE_IMAGE}\" line: base.image would be ignored", def.Containerfile)
	} else if !finalStageOnBase(cf) {
		v.errorf(lineOr(raw.Containerfile.Line, m.line), "%s: the final stage does not build on ${BASE_IMAGE} (directly or through earlier stages): the image would not be what base.image says", def.Containerfile)
	}

	// Variables first: everything else may refer to them.
	for k, val := range raw.Variables {
		if !varRE.MatchString(k) {
			v.errorf(val.Line, "variable name %q: want letters, digits, _ . -", k)
		}
		def.Vars[k] = val.Value
	}
	r := renderer{v: v, vars: def.Vars, builtins: map[string]string{"name": def.Name, "version": def.Version}}
	for _, k := range sortedKeys(raw.Variables) {
		def.Vars[k] = r.render(raw.Variables[k])
	}

	def.Base.Image = r.render(raw.Base.value.Image)
	def.Base.Digest = r.render(raw.Base.value.Digest)
	v.checkBase(def.Base, m)
	r.builtins["base.image"] = def.Base.Image

	for _, k := range sortedKeys(raw.Args) {
		if !argRE.MatchString(k) {
			v.errorf(raw.Args[k].Line, "build argument name %q: want letters, digits and _", k)
		}
		if k == BaseImageArg {
			// The build sets it to base.image@base.digest: another value
			// would build on an image nobody pulled, pinned or checked,
			// while the labels and the SBOM name base.image.
			v.errorf(raw.Args[k].Line, "build argument %s is base.image's: set base.image (and base.digest) instead", k)
		}
		def.Args[k] = r.render(raw.Args[k])
	}
	for _, k := range sortedKeys(raw.Labels) {
		if strings.TrimSpace(k) == "" {
			v.errorf(raw.Labels[k].Line, "empty label name")
		}
		def.Labels[k] = r.render(raw.Labels[k])
		if strings.IndexFunc(def.Labels[k], func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			// buildah re-emits labels as a LABEL step, where a newline or
			// tab would come out as a backslash and a letter.
			v.errorf(raw.Labels[k].Line, "label %q: value %q contains a control character (a newline from a YAML block scalar?)", k, def.Labels[k])
		}
		if strings.Contains(def.Labels[k], "$") {
			// buildah adds labels as a final LABEL step, which expands
			// variables: "$5" would silently vanish.
			v.errorf(raw.Labels[k].Line, "label %q: value %q contains \"$\", which the build would expand as a variable", k, def.Labels[k])
		}
	}
	// Only tags may name the image's ID: it exists after the build.
	tr := renderer{v: v, vars: r.vars, builtins: withBuiltin(r.builtins, "image.id", ImageID)}
	seen := map[string]int{}
	for _, list := range []struct {
		raw []str
		out *[]string
	}{{raw.Tags, &def.Tags}, {raw.RollingTags, &def.RollingTags}} {
		for _, t := range list.raw {
			tag := tr.render(t)
			if !tagRE.MatchString(ImageTag(tag, strings.Repeat("0", 64))) {
				v.errorf(t.Line, "tag %q is not a valid tag", tag)
			}
			if line, dup := seen[tag]; dup {
				v.errorf(t.Line, "tag %q is already given at line %d: a tag is either immutable (tags) or rolling (rollingTags)", tag, line)
			}
			seen[tag] = t.Line
			*list.out = append(*list.out, tag)
		}
	}
	for _, t := range def.RollingTags {
		if strings.Contains(t, ImageID) {
			v.errorf(m.line, "rolling tag %q holds %s: a tag derived from the content names one image, it cannot roll", t, ImageID)
		}
	}
	if len(def.Tags) == 0 && len(def.RollingTags) == 0 && def.Version != "" {
		def.Tags = []string{def.Version}
	}
	for _, p := range raw.Platforms {
		if !platformRE.MatchString(p.Value) {
			v.errorf(p.Line, "platform %q: want os/arch[/variant], e.g. linux/amd64", p.Value)
		}
		def.Platforms = append(def.Platforms, p.Value)
	}
	if len(def.Platforms) == 0 {
		def.Platforms = []string{"linux/amd64"}
	}
	if raw.SourceDateEpoch.Value != "" {
		n, err := strconv.ParseInt(raw.SourceDateEpoch.Value, 10, 64)
		if err != nil || n < 0 || n > maxEpoch {
			v.errorf(raw.SourceDateEpoch.Line, "sourceDateEpoch %q: want seconds since 1970, before the year 10000 (0 to %d)", raw.SourceDateEpoch.Value, maxEpoch)
		} else {
			def.SourceDateEpoch = &n
		}
	}
	def.Sources = v.sources(fsys, raw.Sources, r, def.Platforms)
	return def
}

// maxEpoch is 9999-12-31T23:59:59Z: later times do not fit an image's
// RFC 3339 timestamps.
const maxEpoch = 253402300799

var fromRE = regexp.MustCompile(`(?i)^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?`)

// finalStageOnBase reports whether the last stage of a Containerfile
// builds on ${BASE_IMAGE}, directly or through the stages it names.
func finalStageOnBase(cf []byte) bool {
	bases := map[string]string{} // stage name -> what it is FROM
	last := ""
	for _, line := range strings.Split(string(cf), "\n") {
		m := fromRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		last = m[1]
		if m[2] != "" {
			bases[strings.ToLower(m[2])] = m[1]
		}
	}
	for seen := 0; seen <= len(bases); seen++ {
		if last == "${BASE_IMAGE}" || last == "$BASE_IMAGE" {
			return true
		}
		next, ok := bases[strings.ToLower(last)]
		if !ok {
			return false
		}
		last = next
	}
	return false
}

func (v *validator) checkBase(b Base, m *mapping[rawDefinition]) {
	raw := &m.value
	line := lineOr(raw.Base.value.Image.Line, lineOr(raw.Base.line, m.line))
	switch {
	case b.Image == "":
		v.errorf(line, "base.image is required (a reference such as docker.io/library/ubuntu:24.04, or scratch)")
	case b.Image == "scratch":
		if b.Digest != "" {
			v.errorf(raw.Base.value.Digest.Line, "base.digest makes no sense with scratch")
		}
	default:
		named, err := reference.ParseNormalizedNamed(b.Image)
		if err != nil {
			v.errorf(line, "base.image %q: %v", b.Image, err)
		} else if _, isDigested := named.(reference.Digested); isDigested {
			v.errorf(line, "base.image %q: put the digest in base.digest", b.Image)
		}
	}
	if b.Digest != "" && !strings.HasPrefix(b.Digest, "sha256:") || b.Digest != "" && !hexRE.MatchString(strings.TrimPrefix(b.Digest, "sha256:")) {
		v.errorf(raw.Base.value.Digest.Line, "base.digest %q: want sha256: and 64 lower-case hex digits", b.Digest)
	}
}

func (v *validator) sources(fsys fs.FS, raws []mapping[rawSource], r renderer, platforms []string) []Source {
	var out []Source
	names := map[string]bool{}
	dests := map[string][]Source{}
	for _, m := range raws {
		rs := &m.value
		s := Source{Name: rs.Name.Value, Dest: rs.Dest.Value}
		for _, p := range rs.Platforms {
			switch {
			case !slices.Contains(platforms, p.Value):
				v.errorf(p.Line, "source %q: platform %q is not one of the definition's platforms (%s)", s.Name, p.Value, strings.Join(platforms, ", "))
			case slices.Contains(s.Platforms, p.Value):
				v.errorf(p.Line, "source %q: platform %q is listed twice", s.Name, p.Value)
			default:
				s.Platforms = append(s.Platforms, p.Value)
			}
		}
		switch {
		case s.Name == "":
			v.errorf(m.line, "source: name is required")
		case names[s.Name]:
			v.errorf(rs.Name.Line, "source %q is defined twice", s.Name)
		}
		names[s.Name] = true
		s.URL = r.render(rs.URL)
		scheme, _, _ := strings.Cut(s.URL, "://")
		switch scheme {
		case "https", "http":
		case "file":
			if !strings.HasPrefix(s.URL, "file:///") {
				v.errorf(lineOr(rs.URL.Line, m.line), "source %q: url %q: a file:// URL needs an absolute path (file:///…)", s.Name, s.URL)
			}
		default:
			v.errorf(lineOr(rs.URL.Line, m.line), "source %q: url %q: want an https://, http:// or file:// URL", s.Name, s.URL)
		}
		s.SHA256 = strings.ToLower(r.render(rs.SHA256))
		if s.SHA256 != "" && !hexRE.MatchString(s.SHA256) {
			v.errorf(rs.SHA256.Line, "source %q: sha256 %q: want 64 hex digits", s.Name, s.SHA256)
		}
		own := renderer{v: v, vars: r.vars, builtins: withBuiltin(r.builtins, "url", s.URL)}
		if rs.Checksum != nil {
			s.Checksum = &Checksum{URL: own.render(rs.Checksum.value.URL), Algorithm: rs.Checksum.value.Algorithm.Value}
			if s.Checksum.URL == "" {
				v.errorf(rs.Checksum.line, "source %q: checksum.url is required", s.Name)
			}
			switch s.Checksum.Algorithm {
			case "sha1", "sha256", "sha512":
			default:
				v.errorf(lineOr(rs.Checksum.value.Algorithm.Line, rs.Checksum.line), "source %q: checksum.algorithm %q: want sha1, sha256 or sha512", s.Name, s.Checksum.Algorithm)
			}
		}
		if rs.Signature != nil {
			s.Signature = v.signature(fsys, s.Name, rs.Signature, own)
		}
		if scheme != "file" && s.SHA256 == "" && s.Checksum == nil {
			v.errorf(m.line, "source %q: a downloaded file needs sha256 or checksum (nothing downloaded is used unchecked)", s.Name)
		}
		if scheme == "http" && s.SHA256 == "" && s.Signature == nil && s.Checksum != nil && strings.HasPrefix(strings.ToLower(s.Checksum.URL), "http://") {
			// Whoever can change the one on the way can change the other.
			v.errorf(lineOr(rs.Checksum.value.URL.Line, rs.Checksum.line), "source %q: the file and its checksum both come over plain http, so the checksum checks nothing: pin sha256, or fetch one of them over https", s.Name)
		}
		clean := path.Clean(s.Dest)
		switch {
		case s.Dest == "":
			v.errorf(m.line, "source %q: dest is required (a path in the build context)", s.Name)
		case path.IsAbs(s.Dest) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../"):
			v.errorf(rs.Dest.Line, "source %q: dest %q must stay inside the build context", s.Name, s.Dest)
		case inDefinition(fsys, clean) != "":
			v.errorf(rs.Dest.Line, "source %q: dest %q: %s is in the definition folder, and the download would replace it in the build context", s.Name, s.Dest, inDefinition(fsys, clean))
		default:
			for _, other := range dests[clean] {
				if overlap(platforms, s, other) {
					v.errorf(rs.Dest.Line, "source %q: dest %q is also source %q's on the same platform", s.Name, s.Dest, other.Name)
					break
				}
			}
		}
		s.Dest = clean
		dests[clean] = append(dests[clean], s)
		out = append(out, s)
	}
	return out
}

// inDefinition returns what of dest (a clean relative path) the definition
// folder fsys already holds: dest itself, or a file where dest needs a
// folder; "" for nothing.
func inDefinition(fsys fs.FS, dest string) string {
	for p := dest; p != "."; p = path.Dir(p) {
		info, err := fs.Stat(fsys, p)
		if err != nil {
			continue
		}
		if p == dest {
			return p
		}
		if !info.IsDir() {
			return p
		}
		return ""
	}
	return ""
}

// overlap reports whether a and b are both used on one of platforms.
func overlap(platforms []string, a, b Source) bool {
	for _, p := range platforms {
		if a.ForPlatform(p) && b.ForPlatform(p) {
			return true
		}
	}
	return false
}

func (v *validator) signature(fsys fs.FS, source string, m *mapping[rawSignature], r renderer) *Signature {
	rs := &m.value
	sig := &Signature{URL: r.render(rs.URL), Fingerprint: strings.ToUpper(strings.ReplaceAll(r.render(rs.Fingerprint), " ", ""))}
	if sig.URL == "" {
		v.errorf(m.line, "source %q: signature.url is required", source)
	}
	if !fingerprintRE.MatchString(sig.Fingerprint) {
		v.errorf(lineOr(rs.Fingerprint.Line, m.line), "source %q: signature.fingerprint %q: want the key's full 40-hex-digit fingerprint", source, rs.Fingerprint.Value)
	}
	if rs.Key.Value != "" {
		key, err := fs.ReadFile(fsys, path.Clean(rs.Key.Value))
		if err != nil {
			v.errorf(rs.Key.Line, "source %q: signature.key %q: %v", source, rs.Key.Value, err)
		}
		sig.Key = key
	}
	return sig
}

// renderer expands {{name}} placeholders from variables and built-in names.
type renderer struct {
	v        *validator
	vars     map[string]string
	builtins map[string]string
}

func (r renderer) render(s str) string {
	return r.expand(s.Value, s.Line, 0)
}

func (r renderer) expand(text string, line, depth int) string {
	if depth > 8 {
		r.v.errorf(line, "variables refer to each other in a loop")
		return text
	}
	return placeholderRE.ReplaceAllStringFunc(text, func(m string) string {
		key := placeholderRE.FindStringSubmatch(m)[1]
		if val, ok := r.builtins[key]; ok {
			return val
		}
		if val, ok := r.vars[key]; ok {
			return r.expand(val, line, depth+1)
		}
		r.v.errorf(line, "unknown variable %q in %q (variables: %s)", key, text, strings.Join(sortedKeys(r.vars), ", "))
		return m
	})
}

func withBuiltin(m map[string]string, k, val string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for key, x := range m {
		out[key] = x
	}
	out[k] = val
	return out
}

func lineOr(line, fallback int) int {
	if line > 0 {
		return line
	}
	return fallback
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
