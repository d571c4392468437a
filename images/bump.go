package images

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/agentforge/agentforge/images/fileedit"
)

// Edit is a set of changes to the image.yaml of a definition folder, made
// together by EditDefinition.
type Edit struct {
	// Variables are new values for existing variables.
	Variables map[string]string
	// BaseDigest pins the base image (base.digest) when not empty.
	BaseDigest string
	// Expect are the values (a variable's, or base.digest) the changes
	// were worked out from: when the file holds others by the time it is
	// written (edited meanwhile), nothing is written.
	Expect map[string]string
}

// EditDefinition makes every change of e to the image.yaml of the
// definition folder dir at once, keeping comments and layout: it computes
// the new text in memory, checks that it loads as a definition, and only
// then replaces the file (a rename of a complete temporary file). A change
// that cannot be made, or a result that does not load, leaves the file as
// it was. Concurrent edits of one folder (in this process or another) are
// serialized, so none is lost, and one whose Expect values are no longer
// there (a hand edit while a bump downloaded) writes nothing. It is how
// version bumps are written.
func EditDefinition(dir string, e Edit) error {
	file := filepath.Join(dir, FileName)
	_, err := fileedit.Edit(file, func(data []byte, exists bool) ([]byte, error) {
		if !exists {
			return nil, fmt.Errorf("bump %s: %w", file, fs.ErrNotExist)
		}
		if err := checkExpected(dir, data, e.Expect); err != nil {
			return nil, fmt.Errorf("bump %s: %w", file, err)
		}
		out := data
		var err error
		if len(e.Variables) > 0 {
			if out, err = setVariables(file, out, e.Variables); err != nil {
				return nil, err
			}
		}
		if e.BaseDigest != "" {
			if out, err = setBaseDigest(file, out, e.BaseDigest); err != nil {
				return nil, err
			}
		}
		if bytes.Equal(out, data) {
			return data, nil
		}
		if _, err := loadWith(dir, out); err != nil {
			return nil, fmt.Errorf("bump %s: the new values do not make a valid definition (nothing was written): %w", file, err)
		}
		return out, nil
	})
	return err
}

// SetVariables rewrites the values of existing variables in the image.yaml
// of the definition folder dir (see EditDefinition).
func SetVariables(dir string, values map[string]string) error {
	return EditDefinition(dir, Edit{Variables: values})
}

// SetBaseDigest pins the definition's base image to digest (base.digest
// in the image.yaml of the folder dir; see EditDefinition).
func SetBaseDigest(dir, digest string) error {
	return EditDefinition(dir, Edit{BaseDigest: digest})
}

// setVariables returns data (the text of file) with the values of
// existing variables replaced.
func setVariables(file string, data []byte, values map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := data
	for _, k := range keys {
		re := regexp.MustCompile(`(?m)^(\s+` + regexp.QuoteMeta(k) + `:[ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s#]+)`)
		if !re.Match(out) {
			return nil, &DefinitionError{File: file, Msg: fmt.Sprintf("bump: variable %q not found (only existing variables, one per line under variables:, are set)", k)}
		}
		out = re.ReplaceAll(out, []byte("${1}"+quoteIfNeeded(values[k])))
	}
	return out, nil
}

// setBaseDigest returns data (the text of file) with the base's digest
// line replaced, or one added after its image line.
func setBaseDigest(file string, data []byte, digest string) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	inBase, image, done := false, -1, false
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "base:"):
			inBase = true
			continue
		case inBase && trimmed != "" && !strings.HasPrefix(trimmed, "#") && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t"):
			inBase = false
		}
		if !inBase {
			continue
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		switch {
		case strings.HasPrefix(trimmed, "digest:"):
			lines[i] = indent + "digest: " + quoteIfNeeded(digest) + "\n"
			done = true
		case strings.HasPrefix(trimmed, "image:"):
			image = i
		}
	}
	if !done {
		if image < 0 {
			return nil, &DefinitionError{File: file, Msg: "bump: no base.image line to pin (write base: as a block mapping, its image: on a line of its own)"}
		}
		line := lines[image]
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if !strings.HasSuffix(line, "\n") {
			lines[image] += "\n"
		}
		lines = slices.Insert(lines, image+1, indent+"digest: "+quoteIfNeeded(digest)+"\n")
	}
	return []byte(strings.Join(lines, "")), nil
}

// loadWith loads the definition in dir with image.yaml replaced by data.
func loadWith(dir string, data []byte) (*Definition, error) {
	scratch, err := os.MkdirTemp("", "agentforge-bump-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	if err := os.CopyFS(scratch, os.DirFS(dir)); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(scratch, FileName), data, 0o644); err != nil {
		return nil, err
	}
	return Load(os.DirFS(scratch), dir, nil)
}

// Value is the definition's value of a key a bump sets or expects:
// base.digest, base.image, else the variable's.
func (d *Definition) Value(key string) string {
	switch key {
	case "base.digest":
		return d.Base.Digest
	case "base.image":
		return d.Base.Image
	}
	return d.Vars[key]
}

// checkExpected checks that the definition in dir, with the image.yaml
// data read under the edit's lock, still has the values expect names.
func checkExpected(dir string, data []byte, expect map[string]string) error {
	if len(expect) == 0 {
		return nil
	}
	def, err := loadWith(dir, data)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(expect)) {
		if got := def.Value(k); got != expect[k] {
			return fmt.Errorf("%s is %q now, not the %q the new values were worked out from: the file changed meanwhile (nothing was written; run it again)", k, got, expect[k])
		}
	}
	return nil
}

func quoteIfNeeded(v string) string {
	if regexp.MustCompile(`^[A-Za-z0-9._/-]+$`).MatchString(v) {
		return v
	}
	return fmt.Sprintf("%q", v)
}
