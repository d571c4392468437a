package update

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/images/deb822"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/httpget"
	"github.com/ulikunitz/xz"
)

// Suite is one apt repository suite an image's packages come from.
type Suite struct {
	// URL is the archive's base URL (before mirrors): deb.debian.org's
	// debian or debian-security, archive.ubuntu.com's ubuntu, …
	URL  string
	Name string // trixie, trixie-updates, trixie-security
	// Components are the index components read (main; universe too on
	// Ubuntu, where podman is).
	Components []string
	Security   bool
}

// SuitesFor are the suites an image of os (os-release ID) and codename
// takes its packages and updates from, security first, for arch (Ubuntu
// keeps other architectures than amd64 and i386 on ports.ubuntu.com).
func SuitesFor(os, codename, arch string) ([]Suite, error) {
	if codename == "" {
		return nil, errs.Inputf("os packages: the image's os-release names no VERSION_CODENAME")
	}
	switch os {
	case "debian":
		main := []string{"main"}
		return []Suite{
			{URL: "http://deb.debian.org/debian-security", Name: codename + "-security", Components: main, Security: true},
			{URL: "http://deb.debian.org/debian", Name: codename, Components: main},
			{URL: "http://deb.debian.org/debian", Name: codename + "-updates", Components: main},
		}, nil
	case "ubuntu":
		comps := []string{"main", "universe"}
		archive, security := "http://archive.ubuntu.com/ubuntu", "http://security.ubuntu.com/ubuntu"
		if arch != "amd64" && arch != "i386" {
			archive, security = "http://ports.ubuntu.com/ubuntu-ports", "http://ports.ubuntu.com/ubuntu-ports"
		}
		return []Suite{
			{URL: security, Name: codename + "-security", Components: comps, Security: true},
			{URL: archive, Name: codename, Components: comps},
			{URL: archive, Name: codename + "-updates", Components: comps},
		}, nil
	}
	return nil, errs.Inputf("os packages: %q images are not supported (Debian and Ubuntu are)", os)
}

// PackageUpdate is an installed package with a newer version in the
// archive.
type PackageUpdate struct {
	Name         string `json:"name"`
	Architecture string `json:"architecture"`
	Installed    string `json:"installed"`
	Available    string `json:"available"`
	Suite        string `json:"suite"`
	Security     bool   `json:"security"`
	// Phased is the available version's Phased-Update-Percentage when it
	// is below 100 (Ubuntu's phased updates), else nil.
	Phased *int `json:"phased,omitempty"`
}

// indexEntry is what the check reads of one Packages index stanza.
type indexEntry struct {
	Name, Version, Architecture string
	// Phased is the stanza's Phased-Update-Percentage: 100 when the field
	// is absent or not a number from 0 to 100.
	Phased int
}

// heldBack reports whether apt keeps the upgrade u back as a phased
// update: the available version's Phased-Update-Percentage is below 100
// and no version newer than the installed one comes from a security suite
// (securityNewer). This is apt's rule since 2.1.16 (Ubuntu 21.04; see
// pkgDepCache::PhasingApplied in apt-pkg/depcache.cc and "Phased Updates"
// in apt_preferences(5); Ubuntu's process:
// https://wiki.ubuntu.com/PhasedUpdates). Whether a machine is in
// a phase is a random draw seeded with /etc/machine-id (apt applies every
// phased update when there is none, in a chroot or with SOURCE_DATE_EPOCH
// set), so an image build cannot be relied on to install it: counting it
// as pending would make every nightly rebuild the image for an update that
// the rebuild may keep back again.
func heldBack(u PackageUpdate, securityNewer bool) bool {
	return u.Phased != nil && !securityNewer
}

// maxIndex bounds an archive index read (Debian main amd64's Packages is
// about 60 MB uncompressed); a larger one is an error, not read in part
// (the packages past the bound would be missed). A variable for tests.
var maxIndex int64 = 512 << 20

// archive reads apt indexes over HTTP, through mirrors, once their
// suite's InRelease is authenticated with keys (see readInRelease).
type archive struct {
	client  *http.Client
	mirrors []remote.Mirror
	keys    openpgp.EntityList
	// now is the time a Valid-Until and the keys are checked at
	// (default: the clock).
	now func() time.Time
	// maxAge bounds the age of a security or updates suite's InRelease
	// without a Valid-Until (see releaseIndex.fresh); 0 for none.
	maxAge time.Duration
}

// upgrades are what pending finds: the upgrades an apt-get upgrade takes,
// and those it keeps back, each sorted security first, then by name.
type upgrades struct {
	// Pending are the upgrades apt takes.
	Pending []PackageUpdate
	// Phased are those it holds back as phased updates (see heldBack).
	Phased []PackageUpdate
	// Held are those of packages on hold (dpkg's selection, apt-mark
	// hold), which apt-get upgrade never upgrades.
	Held []PackageUpdate
}

// pending compares the installed packages with the suites' indexes: every
// package with a newer version somewhere (the newest, security suites
// first), sorted into what apt-get upgrade takes and what it keeps back
// (phased updates, packages on hold). state is a digest of the suites' InRelease files: the
// indexes' identity, which changes when the archive publishes anything
// new. Every InRelease is authenticated and every index checked against
// it first: a suite that fails is an error, never a suite with nothing
// pending.
func (a *archive) pending(ctx context.Context, inv *sbom.Inventory, suites []Suite, arch string) (up upgrades, state string, err error) {
	installed := map[string]sbom.Deb{}
	for _, d := range inv.Debs {
		installed[d.Name+"/"+d.Architecture] = d
	}
	best := map[string]PackageUpdate{}
	// securityNewer are the packages with a version newer than the
	// installed one in a security suite (not necessarily the newest).
	securityNewer := map[string]bool{}
	h := sha256.New()
	for _, s := range suites {
		dists := s.URL + "/dists/" + s.Name
		release, err := a.get(ctx, dists+"/InRelease", 16<<20)
		if err != nil {
			return upgrades{}, "", fmt.Errorf("suite %s: %w", s.Name, err)
		}
		idx, err := readInRelease(release, s.Name, a.keys, a.clock())
		// Where the archive bounds the file itself (Debian's Valid-Until),
		// that bound is the one (see --apt-max-age).
		if err == nil && a.maxAge > 0 && idx.validUntil.IsZero() && (s.Security || strings.HasSuffix(s.Name, "-updates")) {
			err = idx.fresh(s.Name, a.maxAge, a.clock())
		}
		if err != nil {
			return upgrades{}, "", fmt.Errorf("suite %s (%s): %w", s.Name, httpget.RedactURL(a.url(dists+"/InRelease")), err)
		}
		fmt.Fprintf(h, "%s %s %x\n", s.URL, s.Name, sha256.Sum256(release))
		for _, c := range s.Components {
			err := a.packages(ctx, dists, c+"/binary-"+arch+"/Packages", idx, func(e indexEntry) {
				key := e.Name + "/" + e.Architecture
				d, ok := installed[key]
				if !ok || CompareDebVersions(e.Version, d.Version) <= 0 {
					return
				}
				if s.Security {
					securityNewer[key] = true
				}
				if cur, seen := best[key]; seen && CompareDebVersions(cur.Available, e.Version) >= 0 {
					return
				}
				u := PackageUpdate{Name: e.Name, Architecture: e.Architecture, Installed: d.Version, Available: e.Version, Suite: s.Name, Security: s.Security}
				if e.Phased < 100 {
					u.Phased = &e.Phased
				}
				best[key] = u
			})
			if err != nil {
				return upgrades{}, "", fmt.Errorf("suite %s %s: %w", s.Name, c, err)
			}
		}
	}
	for key, u := range best {
		switch {
		case installed[key].Hold:
			up.Held = append(up.Held, u)
		case heldBack(u, securityNewer[key]):
			up.Phased = append(up.Phased, u)
		default:
			up.Pending = append(up.Pending, u)
		}
	}
	sortUpdates(up.Pending)
	sortUpdates(up.Phased)
	sortUpdates(up.Held)
	return up, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// sortUpdates sorts security updates first, then by name and
// architecture.
func sortUpdates(updates []PackageUpdate) {
	sort.Slice(updates, func(i, j int) bool {
		if updates[i].Security != updates[j].Security {
			return updates[i].Security
		}
		return updates[i].Name+"/"+updates[i].Architecture < updates[j].Name+"/"+updates[j].Architecture
	})
}

// packages reads the Packages index at path under the suite's dists
// folder (Packages.xz, else .gz, else plain, as apt tries them, of those
// its InRelease idx lists: by hash where the suite offers it), checks it
// against the SHA256 and size idx lists, and then calls fn for each
// stanza's package.
func (a *archive) packages(ctx context.Context, dists, path string, idx *releaseIndex, fn func(indexEntry)) error {
	var lastErr error
	listed := false
	for _, ext := range []string{".xz", ".gz", ""} {
		sum, ok := idx.files[path+ext]
		if !ok {
			continue
		}
		listed = true
		u := dists + "/" + path + ext
		rc, err := a.openIndex(ctx, u, sum, idx.byHash)
		if err != nil {
			var se *httpget.StatusError
			if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
				lastErr = err
				continue
			}
			return err
		}
		err = readIndex(rc, ext, sum, fn)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", httpget.RedactURL(a.url(u)), err)
		}
		return nil
	}
	if !listed {
		return errs.Integrityf("%s: the InRelease lists no %s index", dists, path)
	}
	return lastErr
}

// openIndex opens the index at u; with byHash, at its by-hash name first
// (dir/by-hash/SHA256/HEX, as apt does), which a mirror updated since its
// InRelease was read still serves, and u where that is not found.
func (a *archive) openIndex(ctx context.Context, u string, sum indexSum, byHash bool) (io.ReadCloser, error) {
	if byHash {
		rc, err := a.open(ctx, u[:strings.LastIndex(u, "/")]+"/by-hash/SHA256/"+sum.sha256)
		var se *httpget.StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
			return rc, err
		}
	}
	return a.open(ctx, u)
}

// readIndex reads the index rc (compressed as its name's ext says),
// checks that its bytes are those sum lists, and only then parses it for
// fn, as apt does: what is parsed is what the InRelease vouches for, and
// an index that is not (an attacker's, shaped to make the parser
// allocate) is never parsed. The index is held in memory: its size is
// the one the signed InRelease lists, within maxIndex.
func readIndex(rc io.Reader, ext string, sum indexSum, fn func(indexEntry)) error {
	if sum.size > maxIndex {
		return fmt.Errorf("listed at %d bytes, more than %d", sum.size, maxIndex)
	}
	data, err := io.ReadAll(io.LimitReader(rc, sum.size+1))
	if err != nil {
		return err
	}
	if got := int64(len(data)); got != sum.size {
		actual := strconv.FormatInt(got, 10)
		if got > sum.size {
			actual = "more than " + strconv.FormatInt(sum.size, 10)
		}
		return &errs.IntegrityError{What: "index (as its InRelease lists it)", Check: "size", Expected: strconv.FormatInt(sum.size, 10), Actual: actual}
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum.sha256 {
		return &errs.IntegrityError{What: "index (as its InRelease lists it)", Check: "sha256", Expected: sum.sha256, Actual: hex.EncodeToString(got[:])}
	}
	var r io.Reader = bytes.NewReader(data)
	switch ext {
	case ".xz":
		xr, err := xz.NewReader(r)
		if err != nil {
			return err
		}
		r = xr
	case ".gz":
		gz, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	lim := &io.LimitedReader{R: r, N: maxIndex + 1}
	if err := parsePackages(lim, fn); err != nil {
		return err
	}
	if lim.N == 0 {
		return fmt.Errorf("more than %d bytes uncompressed", maxIndex)
	}
	return nil
}

// parsePackages reads an index's paragraphs (package deb822), calling fn
// with each one's Package, Version, Architecture and
// Phased-Update-Percentage.
func parsePackages(r io.Reader, fn func(indexEntry)) error {
	rd := deb822.NewReader(r, "Packages", "package", "version", "architecture", "phased-update-percentage")
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		e := indexEntry{Name: p.Fields["package"], Version: p.Fields["version"], Architecture: p.Fields["architecture"], Phased: 100}
		// apt rejects a value outside 0-100; here it counts as not
		// phased, so the update is reported rather than hidden.
		if n, err := strconv.Atoi(p.Fields["phased-update-percentage"]); err == nil && n >= 0 && n <= 100 {
			e.Phased = n
		}
		if e.Name != "" && e.Version != "" {
			fn(e)
		}
	}
}

func (a *archive) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

func (a *archive) url(u string) string { return remote.Rewrite(a.mirrors, u) }

func (a *archive) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	return httpget.Get(ctx, a.client, a.url(u), limit)
}

func (a *archive) open(ctx context.Context, u string) (io.ReadCloser, error) {
	return httpget.Open(ctx, a.client, a.url(u))
}

// debArch is the image's dpkg architecture: the one most of its packages
// have (not "all").
func debArch(inv *sbom.Inventory) string {
	count := map[string]int{}
	for _, d := range inv.Debs {
		if d.Architecture != "all" {
			count[d.Architecture]++
		}
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return count[b] - count[a] })
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}
