package deb822

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
)

// Paragraphs are split on blank lines (any number, with spaces), fields
// are case-insensitive and trimmed, continuations kept only for the
// fields a caller asked for; malformed input is an error naming its line.
func TestReader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		fields   []string
		want     []string // each paragraph as "line:k=v,k=v" (sorted keys)
		err      string
	}{
		{name: "two paragraphs", in: "Package: a\nVersion: 1\nDescription: x\n more\n\t more\n\n \nPackage: b\nversion:  2 \n",
			want: []string{"1:description=x,package=a,version=1", "8:package=b,version=2"}},
		{name: "kept fields only", in: "Package: a\nVersion: 1\nDescription: x\nPackage-Extra: y\n", fields: []string{"package", "version"},
			want: []string{"1:package=a,version=1"}},
		{name: "leading blank lines, no final newline", in: "\n\nPackage: a", want: []string{"3:package=a"}},
		{name: "empty", in: "\n \n"},
		{name: "not a field", in: "Package: a\nnonsense\n", err: "line 2"},
		{name: "a space in a name", in: "Pack age: a\n", err: "not a \"Field: value\" line"},
		{name: "continuation first", in: " orphan\nPackage: a\n", err: "continuation line outside a field"},
		{name: "repeated field", in: "Package: a\nVersion: 1\nPackage: b\n", err: "field package repeated"},
		{name: "a repeated field not kept", in: "Package: a\nTag: 1\nTag: 2\n", fields: []string{"package"}, want: []string{"1:package=a"}},
		{name: "continuations of kept fields", in: "Suite: s\nMD5Sum:\n 1 2 m\nSHA256:\n aa 3 main/P\n\tbb 4 main/P.xz \nDate: d\n more\n",
			fields: []string{"sha256", "date"}, want: []string{"1:date=d,sha256=|date:more|sha256:aa 3 main/P;bb 4 main/P.xz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tc.in), "test", tc.fields...)
			var got []string
			var err error
			for {
				var p Paragraph
				if p, err = r.Next(); err != nil {
					break
				}
				s := fmt.Sprintf("%d:%s", p.Line, render(p.Fields))
				for _, k := range slices.Sorted(maps.Keys(p.Continued)) {
					s += "|" + k + ":" + strings.Join(p.Continued[k], ";")
				}
				got = append(got, s)
			}
			if tc.err == "" {
				if !errors.Is(err, io.EOF) || strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
					t.Errorf("%q, %v; want %q", got, err, tc.want)
				}
			} else if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v, want an error saying %q", err, tc.err)
			}
		})
	}
}

func render(m map[string]string) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}
