// Package update finds what a definition pins that has something newer —
// the CPython patch release, the Jenkins remoting jar, the base image's
// digest under its tag, the operating system packages with pending
// (security) updates — and bumps the definition to it, checking every new
// download (sha256, published checksum, OpenPGP signature) as a build
// would, before anything is written.
//
// It reads python.org's listing, the remoting jar's Maven metadata, the
// base image's registry and the distribution's apt indexes, all through
// the caller's mirrors; it builds nothing.
package update

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/cpython"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/httpget"
	"github.com/agentforge/agentforge/jenkins/version"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	cimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// The kinds of inputs Check looks at.
const (
	KindCPython  = "cpython"
	KindRemoting = "remoting"
	KindBase     = "base"
	KindOS       = "os"
	// KindRelease compares the released image with the definition: a
	// bump committed whose release failed is current to every other
	// kind (they compare the definition with upstream), and behind here.
	KindRelease = "release"
)

// Kinds are every kind, in the order Check reports them.
var Kinds = []string{KindCPython, KindRemoting, KindBase, KindOS, KindRelease}

// Options say where Check looks.
type Options struct {
	// Kinds limits the check (default: every kind).
	Kinds []string
	// PythonOrg is python.org or a mirror of its /ftp/python/ tree.
	PythonOrg string
	// Mirrors rewrite every URL read (python.org, repo.jenkins-ci.org,
	// the distribution's archives), as the build's source mirrors do.
	Mirrors []remote.Mirror
	// Hosts reach registries (the base image's tag).
	Hosts *remote.Hosts
	// Image is the image released from the definition (or built from it):
	// the base digest it was built on and the packages it has. Without
	// it, the base is compared with the definition's pin only and the OS
	// packages are not checked.
	Image    types.ImageReference
	ImageSys *types.SystemContext
	// AptKeyrings are OpenPGP keyrings (binary or armored, by name for
	// messages) trusted to sign the archives' InRelease files besides
	// those apt in Image trusts: the key of a mirror that signs its own
	// copy (aptly, Artifactory, Nexus).
	AptKeyrings map[string][]byte
	// Now is the time InRelease files are checked at (Valid-Until, key
	// expiry); default the clock.
	Now func() time.Time
	// AptMaxAge bounds how old the InRelease of a security or updates
	// suite without a Valid-Until may be (its Date): 0 for
	// DefaultAptMaxAge, below 0 for no bound (only Valid-Until, where
	// there is one).
	AptMaxAge time.Duration
	Client    *http.Client
	Log       logrus.FieldLogger
}

// Finding is one pinned input and what is newer, if anything.
type Finding struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Current string `json:"current"`
	Latest  string `json:"latest"`
	// Outdated is true when Latest is newer than Current.
	Outdated bool `json:"outdated"`
	// Why says what was compared with what.
	Why string `json:"why"`
	// Security is true when an update fixes a security issue (OS
	// packages from the security suite).
	Security bool `json:"security,omitempty"`
	// Set are the definition values a bump writes.
	Set map[string]string `json:"set,omitempty"`
	// Packages are the OS packages with pending updates, security first.
	Packages []PackageUpdate `json:"packages,omitempty"`
	// Phased are the OS packages whose newer version is a phased update
	// apt holds back (Phased-Update-Percentage below 100): not pending,
	// so not a reason to bump, until the update is fully phased.
	Phased []PackageUpdate `json:"phased,omitempty"`
	// Held are the OS packages on hold in the image (apt-mark hold) with
	// a newer version: apt-get upgrade leaves them, so they are not
	// pending either; the definition must upgrade them by name.
	Held []PackageUpdate `json:"held,omitempty"`
}

// Problem is a kind that could not be checked, and why.
type Problem struct {
	Kind  string `json:"kind"`
	Error string `json:"error"`
	err   error
}

// Skipped is a kind not checked because nothing was given to compare it
// with: the OS packages without the released image, unless asked for by
// name (then it is a Problem).
type Skipped struct {
	Kind string `json:"kind"`
	Why  string `json:"why"`
}

// Report is what Check found.
type Report struct {
	Definition string    `json:"definition"`
	Findings   []Finding `json:"findings"`
	// Outdated counts the findings with something newer.
	Outdated int       `json:"outdated"`
	Problems []Problem `json:"problems,omitempty"`
	Skipped  []Skipped `json:"skipped,omitempty"`
}

// Err is nil when every kind asked for was checked; otherwise it joins
// the problems' errors, each named by its kind, so that their class
// (errs.ErrInput for a definition or a flag, runtime for the network)
// says how a caller fails: a check that could not look must not read as
// "nothing newer".
func (r *Report) Err() error {
	var all []error
	for _, p := range r.Problems {
		err := p.err
		if err == nil {
			err = errors.New(p.Error)
		}
		all = append(all, fmt.Errorf("%s not checked: %w", p.Kind, err))
	}
	return errors.Join(all...)
}

// Check looks up every pinned input of def for something newer. A kind
// that cannot be checked (no network to it, a registry that refuses) is a
// Problem in the report (see Report.Err), not an error: the other kinds
// are still checked. The OS packages without opts.Image are Skipped,
// unless opts.Kinds names them.
func Check(ctx context.Context, def *images.Definition, opts Options) *Report {
	rep := &Report{Definition: def.Path, Findings: []Finding{}}
	kinds := opts.Kinds
	if len(kinds) == 0 {
		kinds = Kinds
	}
	for _, k := range Kinds {
		if !slices.Contains(kinds, k) {
			continue
		}
		var f *Finding
		var err error
		switch k {
		case KindCPython:
			f, err = checkCPython(ctx, def, opts)
		case KindRemoting:
			f, err = checkRemoting(ctx, def, opts)
		case KindBase:
			f, err = checkBase(ctx, def, opts)
		case KindOS, KindRelease:
			if opts.Image == nil && len(opts.Kinds) == 0 {
				rep.Skipped = append(rep.Skipped, Skipped{Kind: k, Why: "no released image given (--image) to compare with"})
				continue
			}
			if k == KindOS {
				f, err = checkOS(ctx, def, opts)
			} else {
				f, err = checkRelease(ctx, def, opts)
			}
		}
		switch {
		case err != nil:
			rep.Problems = append(rep.Problems, Problem{Kind: k, Error: err.Error(), err: err})
		case f != nil:
			rep.Findings = append(rep.Findings, *f)
			if f.Outdated {
				rep.Outdated++
			}
		}
	}
	return rep
}

// ParseKinds checks kind names (empty: every kind).
func ParseKinds(list []string) ([]string, error) {
	for _, k := range list {
		if !slices.Contains(Kinds, k) {
			return nil, errs.Inputf("kind %q: want one of %s", k, strings.Join(Kinds, ", "))
		}
	}
	return list, nil
}

func (o Options) aptMaxAge() time.Duration {
	switch {
	case o.AptMaxAge == 0:
		return DefaultAptMaxAge
	case o.AptMaxAge < 0:
		return 0
	}
	return o.AptMaxAge
}

func (o Options) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return httpget.DefaultClient
}

func checkCPython(ctx context.Context, def *images.Definition, opts Options) (*Finding, error) {
	cur, ok := def.Vars["python.version"]
	if !ok {
		return nil, nil
	}
	parts := strings.Split(cur, ".")
	if len(parts) != 3 {
		return nil, errs.Inputf("python.version %q: want X.Y.Z", cur)
	}
	// python.org's listing goes through the source mirrors, as every
	// other URL does (a site that reaches python.org only through one).
	finder := &cpython.Finder{Base: opts.PythonOrg, Client: opts.Client, Rewrite: func(u string) string { return remote.Rewrite(opts.Mirrors, u) },
		Format: pythonFormat(def, cur)}
	latest, err := finder.Latest(ctx, parts[0]+"."+parts[1])
	if err != nil {
		return nil, err
	}
	f := &Finding{Kind: KindCPython, Name: "python", Current: cur, Latest: latest.Version,
		Why: fmt.Sprintf("python.org's newest %s.%s patch release with a source tarball", parts[0], parts[1])}
	if cpython.Newer(latest.Version, cur) {
		f.Outdated = true
		f.Set = map[string]string{"python.version": latest.Version, "python.sha256": latest.SHA256}
	}
	return f, nil
}

// pythonFormat is the format of the CPython tarball def downloads (the
// python source's Python-CUR.FORMAT), whose sha256 a bump pins: "" (the
// Finder's default) when it names none.
func pythonFormat(def *images.Definition, cur string) string {
	i := slices.IndexFunc(def.Sources, func(s images.Source) bool { return s.Name == "python" })
	if i < 0 {
		return ""
	}
	u := def.Sources[i].URL
	format, ok := strings.CutPrefix(u[strings.LastIndex(u, "/")+1:], "Python-"+cur+".")
	if !ok {
		return ""
	}
	return format
}

// mavenMetadata is the part of maven-metadata.xml Check reads.
type mavenMetadata struct {
	Versioning struct {
		Latest   string   `xml:"latest"`
		Release  string   `xml:"release"`
		Versions []string `xml:"versions>version"`
	} `xml:"versioning"`
}

func checkRemoting(ctx context.Context, def *images.Definition, opts Options) (*Finding, error) {
	cur, ok := def.Vars["remoting.version"]
	if !ok {
		return nil, nil
	}
	i := slices.IndexFunc(def.Sources, func(s images.Source) bool { return s.Name == "remoting" })
	if i < 0 {
		return nil, errs.Inputf("remoting.version is set but no source is named remoting")
	}
	// .../remoting/VERSION/remoting-VERSION.jar -> .../remoting/maven-metadata.xml
	u := def.Sources[i].URL
	u = u[:strings.LastIndex(u, "/")]
	u = u[:strings.LastIndex(u, "/")] + "/maven-metadata.xml"
	data, err := httpget.Get(ctx, opts.client(), remote.Rewrite(opts.Mirrors, u), 4<<20)
	if err != nil {
		return nil, err
	}
	var m mavenMetadata
	if err := xml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", httpget.RedactURL(u), err)
	}
	latest := newestRemoting(m)
	if latest == "" {
		return nil, fmt.Errorf("%s names no release", httpget.RedactURL(u))
	}
	f := &Finding{Kind: KindRemoting, Name: "remoting", Current: cur, Latest: latest, Why: "the newest release in the jar's Maven metadata"}
	// A definition with a remoting.sha256 variable pins the jar: Maven
	// publishes only a .sha1 beside it, on the jar's own server (or
	// mirror). Bump fills the pin in from the jar it checked.
	_, pins := def.Vars[RemotingSHA256]
	switch {
	case NewerRemoting(latest, cur):
		f.Outdated = true
		f.Set = map[string]string{"remoting.version": latest}
		if pins {
			f.Set[RemotingSHA256] = ""
		}
	case pins && def.Value(RemotingSHA256) == "":
		f.Outdated = true
		f.Latest = cur
		f.Why = "the jar is checked only against the .sha1 its own server publishes: bump pins its sha256 (remoting.sha256)"
		f.Set = map[string]string{RemotingSHA256: ""}
	}
	return f, nil
}

// RemotingSHA256 is the definition variable that pins the remoting jar's
// sha256. A remoting finding sets it to "" for Bump to fill in with the
// sha256 of the jar it downloaded and checked against its .sha1.
const RemotingSHA256 = "remoting.sha256"

// remotingReleaseRE is a remoting release version: JEP-229's
// BUILD.vHASH (3355.v388858a_47b_33) or the older dotted numbers (4.13.3).
// A snapshot, a release candidate or anything else (a path) is not one.
var remotingReleaseRE = regexp.MustCompile(`^[0-9]+\.v[0-9a-f_]+$|^[0-9]+(\.[0-9]+)+$`)

// newestRemoting is the newest release the metadata names, in
// <versions>, <release> or <latest>: <release> is whatever was deployed
// last, which need not be the newest, and <latest> may be a snapshot.
// "" when it names none.
func newestRemoting(m mavenMetadata) string {
	var newest string
	for _, v := range append([]string{m.Versioning.Release, m.Versioning.Latest}, m.Versioning.Versions...) {
		v = strings.TrimSpace(v)
		if remotingReleaseRE.MatchString(v) && (newest == "" || NewerRemoting(v, newest)) {
			newest = v
		}
	}
	return newest
}

// NewerRemoting reports whether remoting version a is newer than b (see
// package jenkins/version).
func NewerRemoting(a, b string) bool { return version.Compare(a, b) > 0 }

func checkBase(ctx context.Context, def *images.Definition, opts Options) (*Finding, error) {
	if def.Base.Image == "scratch" {
		return nil, nil
	}
	named, err := reference.ParseNormalizedNamed(def.Base.Image)
	if err != nil {
		return nil, errs.Inputf("base.image %q: %w", def.Base.Image, err)
	}
	named = reference.TagNameOnly(named)
	if opts.Hosts == nil {
		return nil, errs.Inputf("base: no registry configuration")
	}
	c, err := opts.Hosts.Client(reference.TrimNamed(named))
	if err != nil {
		return nil, err
	}
	now, err := c.ManifestDigest(ctx, named.(reference.Tagged).Tag())
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", named, err)
	}
	f := &Finding{Kind: KindBase, Name: named.String(), Latest: now.String()}
	switch {
	case def.Base.Digest != "":
		f.Current, f.Why = def.Base.Digest, "the tag's digest now and the definition's pin"
	case opts.Image != nil:
		inv, err := imageBase(ctx, opts)
		if err != nil {
			return nil, err
		}
		f.Current, f.Why = inv, "the tag's digest now and the one the released image was built on"
	default:
		f.Why = "the base is not pinned (base.digest) and no released image was given (--image): nothing to compare"
		f.Set = map[string]string{"base.digest": now.String()}
		return f, nil
	}
	if f.Current != f.Latest {
		f.Outdated = true
		f.Set = map[string]string{"base.digest": now.String()}
	}
	return f, nil
}

// imageLabels are the released image's labels (its platform's, for an
// index).
func imageLabels(ctx context.Context, opts Options) (map[string]string, error) {
	ref, err := singleImage(ctx, opts.Image, opts.ImageSys)
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, opts.ImageSys)
	if err != nil {
		return nil, fmt.Errorf("released image: %w", err)
	}
	defer src.Close()
	img, err := cimage.FromUnparsedImage(ctx, opts.ImageSys, cimage.UnparsedInstance(src, nil))
	if err != nil {
		return nil, fmt.Errorf("released image: %w", err)
	}
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("released image: %w", err)
	}
	return cfg.Config.Labels, nil
}

// baseDigestLabel is the label builder.Build records the base's digest in.
const baseDigestLabel = "org.opencontainers.image.base.digest"

// imageBase is the base digest the image records (the labels builder.Build
// sets).
func imageBase(ctx context.Context, opts Options) (string, error) {
	labels, err := imageLabels(ctx, opts)
	if err != nil {
		return "", err
	}
	d := labels[baseDigestLabel]
	if d == "" {
		return "", errors.New("the released image records no base digest (label " + baseDigestLabel + ")")
	}
	return d, nil
}

// checkRelease compares the released image with the definition it should
// have been built from: every label the definition sets (the CPython,
// remoting and Java versions among them) and the base digest it pins. A
// difference is a finding with nothing to adopt: the definition is ahead
// of what was released (a bump committed, its release failed), and a
// release is what brings the image level.
func checkRelease(ctx context.Context, def *images.Definition, opts Options) (*Finding, error) {
	if opts.Image == nil {
		return nil, errs.Inputf("release: give the released image (--image) to compare with the definition")
	}
	labels, err := imageLabels(ctx, opts)
	if err != nil {
		return nil, err
	}
	want := maps.Clone(def.Labels)
	if def.Base.Digest != "" {
		want[baseDigestLabel] = def.Base.Digest
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if labels[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s %q, the definition %q", k, labels[k], want[k]))
		}
	}
	f := &Finding{Kind: KindRelease, Name: "released image", Current: "this definition", Latest: "this definition",
		Why: "the released image's labels and base digest against the definition's"}
	if len(diffs) > 0 {
		f.Outdated, f.Current = true, "another definition"
		f.Why += ": " + strings.Join(diffs, "; ")
	}
	return f, nil
}

func checkOS(ctx context.Context, def *images.Definition, opts Options) (*Finding, error) {
	if opts.Image == nil {
		return nil, errs.Inputf("os packages: give the released image (--image) whose packages to check")
	}
	ref, err := singleImage(ctx, opts.Image, opts.ImageSys)
	if err != nil {
		return nil, err
	}
	inv, err := sbom.ReadInventory(ctx, ref, opts.ImageSys)
	if err != nil {
		return nil, err
	}
	if len(inv.Debs) == 0 {
		// No dpkg database: nothing to update where there is no
		// operating system either (scratch, a static binary); a
		// distribution the check does not know (apk, rpm) is one it
		// cannot look at, never one with nothing pending.
		if inv.OS == "" || inv.OS == "debian" || inv.OS == "ubuntu" {
			return nil, nil
		}
		return nil, errs.Inputf("os packages: %q images are not supported (Debian and Ubuntu are)", inv.OS)
	}
	arch := debArch(inv)
	suites, err := SuitesFor(inv.OS, inv.Codename, arch)
	if err != nil {
		return nil, err
	}
	keys, skipped := imageAptKeys(inv.AptKeyrings, inv.OS)
	for _, s := range skipped {
		if opts.Log != nil {
			opts.Log.Warnf("os packages: the image's %s: ignored, as apt ignores it", s)
		}
	}
	extra, err := aptKeys(opts.AptKeyrings)
	if err != nil {
		return nil, errs.Input(err)
	}
	keys = append(keys, extra...)
	if len(keys) == 0 {
		msg := ""
		if len(skipped) > 0 {
			msg = " (unreadable: " + strings.Join(skipped, "; ") + ")"
		}
		return nil, errs.Inputf("os packages: the image holds no apt keyring (/etc/apt/trusted.gpg.d, /usr/share/keyrings/%s-archive-keyring) to authenticate its archive's indexes with%s; give the archive's keys (--apt-keyring)", inv.OS, msg)
	}
	a := &archive{client: opts.client(), mirrors: opts.Mirrors, keys: keys, now: opts.Now, maxAge: opts.aptMaxAge()}
	up, state, err := a.pending(ctx, inv, suites, arch)
	if err != nil {
		return nil, err
	}
	updates := up.Pending
	f := &Finding{Kind: KindOS, Name: inv.OS + " " + inv.Codename, Current: fmt.Sprintf("%d packages", len(inv.Debs)),
		Latest: fmt.Sprintf("%d with updates", len(updates)), Packages: updates, Phased: up.Phased, Held: up.Held,
		Why: "the image's dpkg database against the archive's indexes (" + suiteNames(suites) + ")"}
	if len(up.Phased) > 0 {
		f.Why += fmt.Sprintf("; not counted: %d phased update(s) (Phased-Update-Percentage below 100), which apt-get upgrade may hold back until they are fully phased", len(up.Phased))
	}
	if len(up.Held) > 0 {
		f.Why += fmt.Sprintf("; not counted: %d update(s) of packages on hold (apt-mark hold), which apt-get upgrade never takes: install them by name in the definition", len(up.Held))
	}
	if len(updates) > 0 {
		f.Outdated = true
		f.Security = updates[0].Security
		if _, ok := def.Vars["os.index"]; ok {
			f.Set = map[string]string{"os.index": state}
		}
	}
	return f, nil
}

func suiteNames(suites []Suite) string {
	var names []string
	for _, s := range suites {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// singleImage is ref, or, when ref names a multi-platform index on a
// registry, this machine's platform's image in it by digest (what a node
// like this one would pull).
func singleImage(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (types.ImageReference, error) {
	named := ref.DockerReference()
	if named == nil {
		return ref, nil
	}
	raw, err := oci.Manifest(ctx, ref, sys)
	if err != nil {
		return nil, fmt.Errorf("released image: %w", err)
	}
	mt := manifest.GuessMIMEType(raw)
	if !manifest.MIMETypeIsMultiImage(mt) {
		return ref, nil
	}
	list, err := manifest.ListFromBlob(raw, mt)
	if err != nil {
		return nil, fmt.Errorf("released image %s: %w", named, err)
	}
	host := oci.HostPlatform()
	d, err := list.ChooseInstance(&types.SystemContext{OSChoice: host.OS, ArchitectureChoice: host.Arch})
	if err != nil {
		return nil, fmt.Errorf("released image %s: %w", named, err)
	}
	child, err := reference.WithDigest(reference.TrimNamed(named), d)
	if err != nil {
		return nil, err
	}
	return docker.NewReference(child)
}
