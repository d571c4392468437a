package images

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// SetVariables rewrites the values of existing variables in the image.yaml
// of the definition folder dir, in place, keeping comments and layout, and
// checks that the result still loads. It is how version bumps are written.
func SetVariables(dir string, values map[string]string) error {
	file := filepath.Join(dir, FileName)
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("bump %s: %w", file, err)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := data
	for _, k := range keys {
		re := regexp.MustCompile(`(?m)^(\s+` + regexp.QuoteMeta(k) + `:[ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s#]+)`)
		if !re.Match(out) {
			return &DefinitionError{File: file, Msg: fmt.Sprintf("bump: variable %q not found", k)}
		}
		out = re.ReplaceAll(out, []byte("${1}"+quoteIfNeeded(values[k])))
	}
	return replaceChecked(dir, file, out)
}

// SetBaseDigest pins the definition's base image to digest (base.digest
// in the image.yaml of the folder dir): it replaces the base's digest
// line, or adds one after its image line, keeping everything else, and
// checks that the result still loads.
func SetBaseDigest(dir, digest string) error {
	file := filepath.Join(dir, FileName)
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("bump %s: %w", file, err)
	}
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
			return &DefinitionError{File: file, Msg: "bump: no base.image to pin"}
		}
		line := lines[image]
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if !strings.HasSuffix(line, "\n") {
			lines[image] += "\n"
		}
		lines = slices.Insert(lines, image+1, indent+"digest: "+quoteIfNeeded(digest)+"\n")
	}
	out := []byte(strings.Join(lines, ""))
	return replaceChecked(dir, file, out)
}

// checkLoads loads the definition in dir with image.yaml replaced by data.
func checkLoads(dir string, data []byte) error {
	scratch, err := os.MkdirTemp("", "agentforge-bump-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	if err := os.CopyFS(scratch, os.DirFS(dir)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(scratch, FileName), data, 0o644); err != nil {
		return err
	}
	_, err = Load(os.DirFS(scratch), dir, nil)
	return err
}

func quoteIfNeeded(v string) string {
	if regexp.MustCompile(`^[A-Za-z0-9._/-]+$`).MatchString(v) {
		return v
	}
	return fmt.Sprintf("%q", v)
}

// replaceChecked replaces file (dir's image.yaml) with out once out loads
// as a definition, checked on a copy; the file is replaced by a rename,
// never left half written.
func replaceChecked(dir, file string, out []byte) error {
	if err := checkLoads(dir, out); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
