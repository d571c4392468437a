package update

import (
	"bufio"
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
	"strings"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/sbom"
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
}

// maxIndex bounds an archive index read (Debian main amd64's Packages is
// about 60 MB uncompressed).
const maxIndex = 512 << 20

// archive reads apt indexes over HTTP, through mirrors.
type archive struct {
	client  *http.Client
	mirrors []remote.Mirror
}

// pending compares the installed packages with the suites' indexes: every
// package with a newer version somewhere (the newest, security suites
// first), sorted security first, then by name. state is a digest of the
// suites' InRelease files: the indexes' identity, which changes when the
// archive publishes anything new.
func (a *archive) pending(ctx context.Context, inv *sbom.Inventory, suites []Suite, arch string) (updates []PackageUpdate, state string, err error) {
	installed := map[string]sbom.Deb{}
	for _, d := range inv.Debs {
		installed[d.Name+"/"+d.Architecture] = d
	}
	best := map[string]PackageUpdate{}
	h := sha256.New()
	for _, s := range suites {
		release, err := a.get(ctx, s.URL+"/dists/"+s.Name+"/InRelease", 16<<20)
		if err != nil {
			return nil, "", fmt.Errorf("suite %s: %w", s.Name, err)
		}
		fmt.Fprintf(h, "%s %s %x\n", s.URL, s.Name, sha256.Sum256(release))
		for _, c := range s.Components {
			err := a.packages(ctx, s.URL+"/dists/"+s.Name+"/"+c+"/binary-"+arch+"/Packages", func(name, version, pkgArch string) {
				d, ok := installed[name+"/"+pkgArch]
				if !ok || CompareDebVersions(version, d.Version) <= 0 {
					return
				}
				key := name + "/" + pkgArch
				if cur, seen := best[key]; seen && CompareDebVersions(cur.Available, version) >= 0 {
					return
				}
				best[key] = PackageUpdate{Name: name, Architecture: pkgArch, Installed: d.Version, Available: version, Suite: s.Name, Security: s.Security}
			})
			if err != nil {
				return nil, "", fmt.Errorf("suite %s %s: %w", s.Name, c, err)
			}
		}
	}
	for _, u := range best {
		updates = append(updates, u)
	}
	sort.Slice(updates, func(i, j int) bool {
		if updates[i].Security != updates[j].Security {
			return updates[i].Security
		}
		return updates[i].Name+"/"+updates[i].Architecture < updates[j].Name+"/"+updates[j].Architecture
	})
	return updates, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// packages reads a Packages index (Packages.xz, else .gz, else plain, as
// apt tries them) and calls fn for each stanza's package.
func (a *archive) packages(ctx context.Context, base string, fn func(name, version, arch string)) error {
	var lastErr error
	for _, ext := range []string{".xz", ".gz", ""} {
		rc, err := a.open(ctx, base+ext)
		if err != nil {
			var se *httpget.StatusError
			if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
				lastErr = err
				continue
			}
			return err
		}
		defer rc.Close()
		var r io.Reader = rc
		switch ext {
		case ".xz":
			if r, err = xz.NewReader(rc); err != nil {
				return fmt.Errorf("%s: %w", httpget.RedactURL(base+ext), err)
			}
		case ".gz":
			gz, err := gzip.NewReader(rc)
			if err != nil {
				return fmt.Errorf("%s: %w", httpget.RedactURL(base+ext), err)
			}
			defer gz.Close()
			r = gz
		}
		return parsePackages(io.LimitReader(r, maxIndex), fn)
	}
	return lastErr
}

// parsePackages reads deb822 stanzas, calling fn with each one's
// Package, Version and Architecture.
func parsePackages(r io.Reader, fn func(name, version, arch string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var name, version, arch string
	flush := func() {
		if name != "" && version != "" {
			fn(name, version, arch)
		}
		name, version, arch = "", "", ""
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue
		}
		switch k {
		case "Package":
			name = strings.TrimSpace(v)
		case "Version":
			version = strings.TrimSpace(v)
		case "Architecture":
			arch = strings.TrimSpace(v)
		}
	}
	flush()
	return sc.Err()
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
