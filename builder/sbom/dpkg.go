package sbom

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
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
	// From names the file (and layer) the entry was read from.
	From string
}

// parseStatus parses a dpkg status file (or one status.d entry) and returns
// its installed packages. Stanzas are separated by blank lines; a field is
// "Name: value" and continues on lines starting with a space or a tab.
// Packages whose Status is not "… installed" (removed, config files only,
// half-installed) are left out; a stanza without a Status field (as in
// distroless status.d entries) counts as installed. what names the file in
// errors.
func parseStatus(data []byte, what string) ([]debPackage, error) {
	var out []debPackage
	fields := map[string]string{}
	last := ""
	start := 0
	flush := func(line int) error {
		if len(fields) == 0 {
			return nil
		}
		defer func() { fields, last = map[string]string{}, "" }()
		name := fields["package"]
		if name == "" {
			return fmt.Errorf("%s: stanza at line %d has no Package field", what, start)
		}
		if st, ok := fields["status"]; ok {
			words := strings.Fields(st)
			if len(words) != 3 {
				return fmt.Errorf("%s: line %d: package %s: Status %q is not \"want flag state\"", what, start, name, st)
			}
			if words[2] != "installed" {
				return nil
			}
		}
		if fields["version"] == "" {
			return fmt.Errorf("%s: stanza at line %d: package %s has no Version", what, start, name)
		}
		p := debPackage{
			Name: name, Version: fields["version"], Architecture: fields["architecture"],
			Maintainer: fields["maintainer"], Homepage: fields["homepage"], From: what,
		}
		if src := fields["source"]; src != "" {
			s, v, _ := strings.Cut(src, " ")
			p.Source = s
			if v = strings.TrimSpace(v); v != "" {
				if !strings.HasPrefix(v, "(") || !strings.HasSuffix(v, ")") {
					return fmt.Errorf("%s: line %d: package %s: Source %q is not \"name (version)\"", what, start, name, src)
				}
				p.SourceVersion = strings.TrimSpace(v[1 : len(v)-1])
			}
		}
		out = append(out, p)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	// Long Description and Conffiles fields are split into lines; one line
	// is never near this.
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(n); err != nil {
				return nil, err
			}
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%s: line %d: continuation line outside a field", what, n)
			}
			// Continuations matter only for multi-line fields we do not use.
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return nil, fmt.Errorf("%s: line %d: %q is not a \"Field: value\" line", what, n, truncate(line, 60))
			}
			if len(fields) == 0 {
				start = n
			}
			k = strings.ToLower(k)
			if _, dup := fields[k]; dup {
				return nil, fmt.Errorf("%s: line %d: field %s repeated in one stanza (a missing blank line?)", what, n, k)
			}
			fields[k] = strings.TrimSpace(v)
			last = k
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: line %d: %w", what, n+1, err)
	}
	if err := flush(n); err != nil {
		return nil, err
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
