// Package deb822 reads the paragraphs of Debian control data (deb822(5)):
// a dpkg status database, a package's control file, an archive's Packages
// index. A paragraph is a run of "Field: value" lines ended by a blank
// line; a line starting with a space or a tab continues the field before
// it. Field names are case-insensitive.
package deb822

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Paragraph is one paragraph's fields, by lower-case name, their first
// line's value trimmed, and the line it starts on.
type Paragraph struct {
	Fields map[string]string
	// Continued are the continuation lines of the fields a Reader was
	// told to keep, trimmed, by field (a Release file's SHA256 list);
	// without a list of fields to keep, they are dropped.
	Continued map[string][]string
	Line      int
}

// Reader reads paragraphs one at a time, so that a large index is never
// held whole.
type Reader struct {
	sc   *bufio.Scanner
	what string
	keep map[string]bool
	line int
}

// NewReader reads r; what names it in errors. With fields, only those
// (lower-case) are kept, which is what a caller reading a 60 MB index
// for three of its fields wants.
func NewReader(r io.Reader, what string, fields ...string) *Reader {
	sc := bufio.NewScanner(r)
	// Long Description and Conffiles fields come a line at a time; one
	// line is never near this.
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	rd := &Reader{sc: sc, what: what}
	if len(fields) > 0 {
		rd.keep = map[string]bool{}
		for _, f := range fields {
			rd.keep[f] = true
		}
	}
	return rd
}

// Next returns the next paragraph, or io.EOF after the last. A line that
// is not a field, a continuation line before any field, or a field twice
// in one paragraph (a missing blank line?) is an error naming the line.
func (r *Reader) Next() (Paragraph, error) {
	p := Paragraph{Fields: map[string]string{}}
	inField := false
	field := "" // the kept field continuation lines belong to
	for r.sc.Scan() {
		r.line++
		line := r.sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if inField {
				return p, nil
			}
		case line[0] == ' ' || line[0] == '\t':
			if !inField {
				return p, fmt.Errorf("%s: line %d: continuation line outside a field", r.what, r.line)
			}
			if field != "" {
				if p.Continued == nil {
					p.Continued = map[string][]string{}
				}
				p.Continued[field] = append(p.Continued[field], strings.TrimSpace(line))
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return p, fmt.Errorf("%s: line %d: %q is not a \"Field: value\" line", r.what, r.line, truncate(line, 60))
			}
			if !inField {
				p.Line, inField = r.line, true
			}
			k = strings.ToLower(k)
			field = ""
			if r.keep != nil && !r.keep[k] {
				continue
			}
			if r.keep != nil {
				field = k
			}
			if _, dup := p.Fields[k]; dup {
				return p, fmt.Errorf("%s: line %d: field %s repeated in one paragraph (a missing blank line?)", r.what, r.line, k)
			}
			p.Fields[k] = strings.TrimSpace(v)
		}
	}
	if err := r.sc.Err(); err != nil {
		return p, fmt.Errorf("%s: line %d: %w", r.what, r.line+1, err)
	}
	if inField {
		return p, nil
	}
	return p, io.EOF
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
