package sbom

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/images/deb822"
)

// debPackage is one installed package from a dpkg database.
type debPackage struct {
	Name         string
	Version      string
	Architecture string
	// Source is the source package name and SourceVersion its version when
	// it differs from the binary's.
	Source        string
	SourceVersion string
	Maintainer    string
	Homepage      string
	// Hold is dpkg's selection "hold" (apt-mark hold): apt upgrades the
	// package only when told to by name.
	Hold bool
	// From names the file (and layer) the entry was read from.
	From string
}

// parseStatus parses a dpkg status file (or one status.d entry) and returns
// its installed packages (deb822: see package deb822). Packages whose
// Status is not "… installed" (removed, config files only, half-installed)
// are left out; a stanza without a Status field (as in distroless
// status.d entries) counts as installed. what names the file in errors.
func parseStatus(data []byte, what string) ([]debPackage, error) {
	var out []debPackage
	r := deb822.NewReader(bytes.NewReader(data), what, "package", "status", "version", "architecture", "maintainer", "homepage", "source")
	for {
		para, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		fields, start := para.Fields, para.Line
		name := fields["package"]
		if name == "" {
			return nil, fmt.Errorf("%s: stanza at line %d has no Package field", what, start)
		}
		hold := false
		if st, ok := fields["status"]; ok {
			words := strings.Fields(st)
			if len(words) != 3 {
				return nil, fmt.Errorf("%s: line %d: package %s: Status %q is not \"want flag state\"", what, start, name, st)
			}
			if words[2] != "installed" {
				continue
			}
			hold = words[0] == "hold"
		}
		if fields["version"] == "" {
			return nil, fmt.Errorf("%s: stanza at line %d: package %s has no Version", what, start, name)
		}
		p := debPackage{
			Name: name, Version: fields["version"], Architecture: fields["architecture"],
			Maintainer: fields["maintainer"], Homepage: fields["homepage"], Hold: hold, From: what,
		}
		if src := fields["source"]; src != "" {
			s, v, _ := strings.Cut(src, " ")
			p.Source = s
			if v = strings.TrimSpace(v); v != "" {
				if !strings.HasPrefix(v, "(") || !strings.HasSuffix(v, ")") {
					return nil, fmt.Errorf("%s: line %d: package %s: Source %q is not \"name (version)\"", what, start, name, src)
				}
				p.SourceVersion = strings.TrimSpace(v[1 : len(v)-1])
			}
		}
		out = append(out, p)
	}
}
