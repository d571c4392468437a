package sbom

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder/source"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
)

// DefaultNamespaceBase prefixes every documentNamespace; the image's digest
// follows, so that one image has one namespace.
const DefaultNamespaceBase = "https://github.com/agentforge/agentforge/sbom"

// Input is what the caller knows about an image beyond its layers. Every
// field is optional; what is empty is read from the image or left out.
type Input struct {
	// Name and Version describe the image (the definition's name and
	// version); empty Name uses the label org.opencontainers.image.title,
	// else the image's name; empty Version the label
	// org.opencontainers.image.version.
	Name    string
	Version string
	// Repository is where the image is published ("quay.io/org/agent"),
	// for its package URL; empty leaves repository_url out.
	Repository string
	// Base is the image built upon; "scratch" means none. An empty Ref is
	// read from the labels org.opencontainers.image.base.name and
	// org.opencontainers.image.base.digest, which builder.Build sets.
	Base source.Base
	// Sources are the files the build downloaded and checked. Their SHA-1
	// and SHA-256 are computed from Path (which must match the SHA-256
	// checked), the version is guessed from the URL's file name
	// (Python-3.11.9.tar.xz gives 3.11.9; a .deb's own control file says
	// it), and the OpenPGP fingerprint comes from the checks made.
	Sources []source.Fetched
	// Created is the document's creation time. Zero: the image's created
	// time, else $SOURCE_DATE_EPOCH, else 1970-01-01. Never the clock.
	Created time.Time
	// Tool names the creator ("agentforge-0.6.0"); empty is "agentforge".
	Tool string
	// NamespaceBase replaces DefaultNamespaceBase.
	NamespaceBase string
	// SystemContext is passed to containers/image to open the image.
	SystemContext *types.SystemContext
	// MaxFileSize and MaxTotalSize cap what is read from the image into
	// memory (0: DefaultMaxFileSize, DefaultMaxTotalSize). Over a cap,
	// Generate fails with ErrTooLarge.
	MaxFileSize  int64
	MaxTotalSize int64
}

// Generate reads the image at ref and returns its SPDX 2.3 document: the
// image as the described package, and the packages it contains or was made
// from. The same image and input give the same document.
func Generate(ctx context.Context, ref types.ImageReference, in Input) (*Document, error) {
	maxFile, maxTotal := in.MaxFileSize, in.MaxTotalSize
	if maxFile <= 0 {
		maxFile = DefaultMaxFileSize
	}
	if maxTotal <= 0 {
		maxTotal = DefaultMaxTotalSize
	}
	img, err := readImage(ctx, ref, in.SystemContext, maxFile, maxTotal)
	if err != nil {
		return nil, fmt.Errorf("SBOM: %w", err)
	}
	doc, err := build(img, in)
	if err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", img.name, err)
	}
	if err := doc.Validate(); err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", img.name, err)
	}
	return doc, nil
}

// ids hands out unique SPDX identifiers made of allowed characters.
type ids map[string]bool

func (s ids) make(parts ...string) string {
	var b strings.Builder
	b.WriteString("SPDXRef")
	for _, p := range parts {
		b.WriteByte('-')
		for _, c := range p {
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
				b.WriteRune(c)
			case c == '+':
				b.WriteString("plus")
			default:
				b.WriteByte('.')
			}
		}
	}
	id := b.String()
	for n := 2; s[id]; n++ {
		id = b.String() + "-" + strconv.Itoa(n)
	}
	s[id] = true
	return id
}

func build(img *imageData, in Input) (*Document, error) {
	used := ids{}
	name := in.Name
	if name == "" {
		name = img.labels["org.opencontainers.image.title"]
	}
	if name == "" {
		name = img.refName
	}
	version := in.Version
	if version == "" {
		version = img.labels["org.opencontainers.image.version"]
	}
	created := createdTime(in, img)
	nsBase := in.NamespaceBase
	if nsBase == "" {
		nsBase = DefaultNamespaceBase
	}
	tool := in.Tool
	if tool == "" {
		tool = "agentforge"
	}
	docName := name
	if version != "" {
		docName += "-" + version
	}
	doc := &Document{
		SPDXVersion:       SPDXVersion,
		DataLicense:       DataLicense,
		SPDXID:            DocumentID,
		Name:              docName,
		DocumentNamespace: nsBase + "/" + escape(name) + "/" + img.digest.Encoded(),
		CreationInfo: CreationInfo{
			Created:  created.UTC().Format("2006-01-02T15:04:05Z"),
			Creators: []string{"Tool: " + tool},
		},
	}

	// The image itself.
	imageID := used.make("Image", name)
	quals := map[string]string{"arch": img.arch, "os": img.os, "variant": img.variant, "tag": version, "repository_url": in.Repository}
	imagePkg := Package{
		Name: name, SPDXID: imageID, VersionInfo: version, DownloadLocation: NoAssertion,
		Checksums:             []Checksum{{Algorithm: "SHA256", ChecksumValue: img.digest.Encoded()}},
		ExternalRefs:          []ExternalRef{purlRef(purl("oci", "", path.Base(strings.ToLower(name)), img.digest.String(), quals))},
		PrimaryPackagePurpose: PurposeContainer,
		Comment:               "manifest digest " + img.digest.String() + ", " + strconv.Itoa(len(img.layers)) + " layers",
	}
	var pkgs []Package
	var rels []Relationship
	add := func(p Package, rel string) {
		pkgs = append(pkgs, noAssert(p))
		rels = append(rels, Relationship{imageID, rel, p.SPDXID})
	}

	// The base image: the caller's, else the labels the builder sets.
	base := in.Base
	if base.Ref == "" {
		base = source.Base{Ref: img.labels["org.opencontainers.image.base.name"], Digest: img.labels["org.opencontainers.image.base.digest"]}
	}
	switch base.Ref {
	case "scratch":
		doc.CreationInfo.Comment = "No base image (FROM scratch)."
	case "":
		doc.CreationInfo.Comment = "Base image unknown: none given and no org.opencontainers.image.base.name label."
	default:
		p, err := basePackage(base, used)
		if err != nil {
			return nil, err
		}
		add(p, RelDescendantOf)
	}

	// Sources.
	for _, s := range in.Sources {
		p, rel, err := sourcePackage(s, used)
		if err != nil {
			return nil, err
		}
		add(p, rel)
	}

	// dpkg packages.
	osID, osVersion := osRelease(img.view)
	debs, err := dpkgPackages(img.view)
	if err != nil {
		return nil, err
	}
	for _, d := range debs {
		add(debSPDX(d, osID, osVersion, used), RelContains)
	}

	// Python distributions.
	for _, p := range pythonPackages(img.view, used) {
		add(p, RelContains)
	}

	doc.Packages = append([]Package{noAssert(imagePkg)}, pkgs...)
	doc.Relationships = append([]Relationship{{DocumentID, RelDescribes, imageID}}, rels...)
	return doc, nil
}

func purlRef(locator string) ExternalRef {
	return ExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: locator}
}

// noAssert fills the license and copyright fields nobody has concluded.
func noAssert(p Package) Package {
	if p.LicenseConcluded == "" {
		p.LicenseConcluded = NoAssertion
	}
	if p.LicenseDeclared == "" {
		p.LicenseDeclared = NoAssertion
	}
	if p.CopyrightText == "" {
		p.CopyrightText = NoAssertion
	}
	return p
}

// createdTime picks the document's time: the caller's, the image's, then
// SOURCE_DATE_EPOCH, then the epoch.
func createdTime(in Input, img *imageData) time.Time {
	switch {
	case !in.Created.IsZero():
		return in.Created
	case img.created != nil && !img.created.IsZero():
		return *img.created
	}
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(s, 0)
	}
	return time.Unix(0, 0)
}

// basePackage describes the base image with a pkg:oci package URL.
func basePackage(b source.Base, used ids) (Package, error) {
	named, err := reference.ParseNormalizedNamed(b.Ref)
	if err != nil {
		return Package{}, fmt.Errorf("base image %q: %w", b.Ref, err)
	}
	repo := named.Name()
	tag := ""
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	d := b.Digest
	if d == "" {
		if c, ok := named.(reference.Canonical); ok {
			d = c.Digest().String()
		}
	}
	p := Package{
		Name: repo, SPDXID: used.make("BaseImage", path.Base(repo)), VersionInfo: tag,
		DownloadLocation:      NoAssertion,
		PrimaryPackagePurpose: PurposeContainer,
		Comment:               "base image " + b.Ref,
	}
	if d != "" {
		algo, hexv, ok := strings.Cut(d, ":")
		if !ok || algo != "sha256" || len(hexv) != 64 {
			return Package{}, fmt.Errorf("base image %q: digest %q is not sha256:<64 hex>", b.Ref, d)
		}
		p.Checksums = []Checksum{{Algorithm: "SHA256", ChecksumValue: hexv}}
		if p.VersionInfo == "" {
			p.VersionInfo = d
		}
	}
	p.ExternalRefs = []ExternalRef{purlRef(purl("oci", "", path.Base(repo), d, map[string]string{"repository_url": repo, "tag": tag}))}
	return p, nil
}

// archiveExts are the endings of source archives, longest first.
var archiveExts = []string{".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tgz", ".txz", ".tbz2", ".tar", ".zip"}

// versionFromURL guesses a version from a file name such as
// Python-3.11.9.tar.xz or remoting-3355.v388858a_47b_33.jar: what follows
// the first '-' that is followed by a digit, without the extension.
func versionFromURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	base := path.Base(u)
	if n, ok := strings.CutSuffix(base, ".deb"); ok {
		// Debian's NAME_VERSION_ARCH.deb.
		if parts := strings.Split(n, "_"); len(parts) == 3 {
			return unescapeURL(parts[1])
		}
	}
	stripped := false
	for _, ext := range archiveExts {
		if strings.HasSuffix(base, ext) {
			base, stripped = strings.TrimSuffix(base, ext), true
			break
		}
	}
	if !stripped {
		base = strings.TrimSuffix(base, path.Ext(base))
	}
	for i := 0; i+1 < len(base); i++ {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' {
			return base[i+1:]
		}
	}
	return ""
}

// sourcePackage describes a fetched source and says how the image relates
// to it.
func sourcePackage(s source.Fetched, used ids) (Package, string, error) {
	if s.Name == "" {
		return Package{}, "", fmt.Errorf("source with URL %q has no name", s.URL)
	}
	what := fmt.Sprintf("source %q", s.Name)
	sha256sum, sha1sum := strings.ToLower(s.SHA256), ""
	if s.Path != "" {
		got256, got1, err := hashFile(s.Path)
		if err != nil {
			return Package{}, "", fmt.Errorf("%s: %w", what, err)
		}
		if sha256sum != "" && sha256sum != got256 {
			return Package{}, "", fmt.Errorf("%s: %s has sha256 %s, not the %s that was checked", what, s.Path, got256, sha256sum)
		}
		sha256sum, sha1sum = got256, got1
	}
	version := versionFromURL(s.URL)
	var fpr string
	var checks []string
	for _, c := range s.Checks {
		if f, ok := strings.CutPrefix(c, "openpgp "); ok && fpr == "" {
			fpr = f
		}
		checks = append(checks, c)
	}
	var purpose string
	lower := strings.ToLower(s.URL)
	switch {
	case strings.HasSuffix(lower, ".jar"):
		purpose = PurposeLibrary
	case strings.HasSuffix(lower, ".deb"):
		purpose = PurposeInstall
	case isArchive(lower):
		purpose = PurposeSource
	default:
		purpose = PurposeFile
	}
	p := Package{
		Name: s.Name, SPDXID: used.make("Source", s.Name), VersionInfo: version,
		DownloadLocation:      NoAssertion,
		PrimaryPackagePurpose: purpose,
	}
	if s.URL != "" && !strings.HasPrefix(s.URL, "file:") {
		p.DownloadLocation = s.URL
	}
	if sha1sum != "" {
		p.Checksums = append(p.Checksums, Checksum{Algorithm: "SHA1", ChecksumValue: sha1sum})
	}
	if sha256sum != "" {
		p.Checksums = append(p.Checksums, Checksum{Algorithm: "SHA256", ChecksumValue: sha256sum})
	}
	info := []string{"downloaded from " + orNone(s.From, s.URL)}
	if len(checks) > 0 {
		info = append(info, "checked: "+strings.Join(checks, ", "))
	}
	if fpr != "" && !s.SignatureSkipped {
		info = append(info, "OpenPGP signature verified with key "+fpr)
	}
	if s.SignatureSkipped {
		info = append(info, "OpenPGP signature check SKIPPED on request")
	}
	if s.Size > 0 {
		info = append(info, strconv.FormatInt(s.Size, 10)+" bytes")
	}
	p.SourceInfo = strings.Join(info, "; ")
	if fpr != "" {
		p.Comment = "OpenPGP signing key fingerprint: " + fpr
	}
	var locator string
	if strings.HasSuffix(lower, ".deb") && s.Path != "" {
		// The package's own control file: its name, architecture and
		// version with the epoch the file name leaves out.
		if c, err := readDebControl(s.Path); err == nil {
			p.VersionInfo = c.Version
			locator = purl("deb", debVendor(s.URL), c.Package, c.Version, map[string]string{"arch": c.Architecture})
		} else {
			p.Comment = strings.TrimPrefix(p.Comment+"; ", "; ") + "version from the file name (control file unreadable: " + err.Error() + ")"
		}
	}
	if locator == "" {
		locator = debFromURL(s.URL)
	}
	if locator == "" {
		locator = mavenFromURL(s.URL)
	}
	if locator == "" {
		q := map[string]string{}
		if p.DownloadLocation != NoAssertion {
			q["download_url"] = p.DownloadLocation
		}
		if sha256sum != "" {
			q["checksum"] = "sha256:" + sha256sum
		}
		locator = purl("generic", "", strings.ToLower(s.Name), version, q)
	}
	p.ExternalRefs = []ExternalRef{purlRef(locator)}
	rel := RelContains
	if purpose == PurposeSource {
		rel = RelGeneratedFrom
	}
	return p, rel, nil
}

// debFromURL returns the package URL of a Debian package file
// (NAME_VERSION_ARCH.deb), or "".
func debFromURL(u string) string {
	base := path.Base(u)
	n, ok := strings.CutSuffix(base, ".deb")
	parts := strings.Split(n, "_")
	if !ok || len(parts) != 3 {
		return ""
	}
	return purl("deb", debVendor(u), parts[0], unescapeURL(parts[1]), map[string]string{"arch": parts[2]})
}

// mavenRoots are the path segments that start a Maven repository's layout
// on the hosts agentforge fetches from (repo.jenkins-ci.org/public/,
// /releases/; Maven Central's /maven2/).
var mavenRoots = []string{"public", "releases", "maven2"}

// mavenFromURL returns the package URL of an artifact in a Maven
// repository's layout (ROOT/GROUP/PATH/ARTIFACT/VERSION/ARTIFACT-VERSION.jar),
// or "".
func mavenFromURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	segs := strings.Split(strings.Trim(pu.Path, "/"), "/")
	for i, seg := range segs {
		if !slices.Contains(mavenRoots, seg) || len(segs)-i < 5 {
			continue
		}
		rest := segs[i+1:]
		n := len(rest)
		artifact, version, file := rest[n-3], rest[n-2], rest[n-1]
		if !strings.HasPrefix(file, artifact+"-"+version+".") {
			continue
		}
		return purl("maven", strings.Join(rest[:n-3], "."), artifact, version, nil)
	}
	return ""
}

// debVendor is the package URL namespace of a .deb's archive.
func debVendor(u string) string {
	if strings.Contains(u, "ubuntu") {
		return "ubuntu"
	}
	return "debian"
}

// unescapeURL decodes %XX escapes (a version's epoch colon is %3a in
// archive URLs); a malformed escape is kept as it is.
func unescapeURL(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		return v
	}
	return s
}

func isArchive(u string) bool {
	for _, ext := range archiveExts {
		if strings.HasSuffix(u, ext) {
			return true
		}
	}
	return false
}

func orNone(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func hashFile(p string) (string, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h256, h1 := sha256.New(), sha1.New()
	if _, err := io.Copy(io.MultiWriter(h256, h1), f); err != nil {
		return "", "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h1.Sum(nil)), nil
}

// osRelease returns ID and VERSION_ID from the image's os-release
// (/etc/os-release, else /usr/lib/os-release, as os-release(5) says).
func osRelease(v *view) (string, string) {
	f, ok := v.read("etc/os-release")
	if !ok {
		f, ok = v.read("usr/lib/os-release")
	}
	if !ok {
		return "", ""
	}
	vals := map[string]string{}
	for _, line := range strings.Split(string(f.data), "\n") {
		k, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(val); err == nil {
			val = uq
		} else {
			val = strings.Trim(val, `"'`)
		}
		vals[k] = val
	}
	return strings.ToLower(vals["ID"]), vals["VERSION_ID"]
}

// dpkgPackages reads the installed packages from /var/lib/dpkg/status and
// /var/lib/dpkg/status.d/*, sorted by name, architecture and version; the
// same package listed twice is kept once.
func dpkgPackages(v *view) ([]debPackage, error) {
	var all []debPackage
	files := []string{}
	if _, ok := v.read("var/lib/dpkg/status"); ok {
		files = append(files, "var/lib/dpkg/status")
	}
	for _, p := range v.under("var/lib/dpkg/status.d") {
		if !strings.HasSuffix(p, ".md5sums") {
			files = append(files, p)
		}
	}
	for _, p := range files {
		f, _ := v.read(p)
		pkgs, err := parseStatus(f.data, fmt.Sprintf("/%s (layer %d)", p, f.layer+1))
		if err != nil {
			return nil, err
		}
		all = append(all, pkgs...)
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Architecture != b.Architecture {
			return a.Architecture < b.Architecture
		}
		return a.Version < b.Version
	})
	out := all[:0]
	for i, p := range all {
		if i > 0 && p.Name == all[i-1].Name && p.Architecture == all[i-1].Architecture && p.Version == all[i-1].Version {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// debSPDX describes one dpkg package with a pkg:deb package URL.
func debSPDX(d debPackage, osID, osVersion string, used ids) Package {
	vendor := osID
	if vendor == "" {
		vendor = "debian"
	}
	q := map[string]string{"arch": d.Architecture}
	if osID != "" && osVersion != "" {
		q["distro"] = osID + "-" + osVersion
	}
	if d.Source != "" && d.Source != d.Name {
		up := d.Source
		if d.SourceVersion != "" {
			up += "@" + d.SourceVersion
		}
		q["upstream"] = up
	}
	p := Package{
		Name: d.Name, SPDXID: used.make("Package", "deb", d.Name, d.Architecture), VersionInfo: d.Version,
		DownloadLocation:      NoAssertion,
		Homepage:              d.Homepage,
		PrimaryPackagePurpose: PurposeLibrary,
		ExternalRefs:          []ExternalRef{purlRef(purl("deb", vendor, d.Name, d.Version, q))},
		Comment:               "from " + d.From,
	}
	if d.Homepage != "" && !strings.Contains(d.Homepage, "://") {
		p.Homepage = ""
	}
	if d.Maintainer != "" {
		p.Supplier = "Person: " + supplier(d.Maintainer)
	}
	if d.Source != "" {
		src := d.Source
		if d.SourceVersion != "" {
			src += " " + d.SourceVersion
		}
		p.SourceInfo = "built from source package " + src
	}
	return p
}

// supplier turns "Name <mail>" into SPDX's "Name (mail)".
func supplier(m string) string {
	name, mail, ok := strings.Cut(m, "<")
	if !ok {
		return strings.TrimSpace(m)
	}
	return strings.TrimSpace(name) + " (" + strings.TrimSuffix(strings.TrimSpace(mail), ">") + ")"
}

// pythonPackages lists the *.dist-info folders under site-packages folders
// (pip's, setuptools', and what pip installed), as pkg:pypi packages.
func pythonPackages(v *view, used ids) []Package {
	dirs := make([]string, 0, len(v.distInfo))
	for d := range v.distInfo {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var out []Package
	for _, d := range dirs {
		base := strings.TrimSuffix(path.Base(d), ".dist-info")
		name, version, ok := strings.Cut(base, "-")
		if !ok || name == "" || version == "" {
			continue
		}
		norm := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(name))
		out = append(out, Package{
			Name: norm, SPDXID: used.make("Package", "python", norm, version), VersionInfo: version,
			DownloadLocation:      NoAssertion,
			PrimaryPackagePurpose: PurposeLibrary,
			ExternalRefs:          []ExternalRef{purlRef(purl("pypi", "", norm, version, nil))},
			Comment:               "found at /" + d,
		})
	}
	return out
}
