package images

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed all:python-agent
var builtin embed.FS

// Builtin lists the names of the definitions embedded in the binary.
func Builtin() []string {
	entries, _ := fs.ReadDir(builtin, ".")
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// Open finds a definition: a folder on disk holding image.yaml, or else the
// name of a built-in definition ("python-agent" or "images/python-agent").
// It returns the folder as an fs.FS and a name for messages. A folder on disk
// wins, so a checkout's edited images/python-agent is used over the embedded copy.
func Open(arg string) (fs.FS, string, error) {
	if st, err := os.Stat(filepath.Join(arg, FileName)); err == nil && !st.IsDir() {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return nil, "", fmt.Errorf("definition %s: %w", arg, err)
		}
		return os.DirFS(abs), filepath.Clean(arg), nil
	}
	name := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(arg)), "images/")
	if sub, err := fs.Sub(builtin, name); err == nil && !strings.Contains(name, "/") {
		if _, err := fs.Stat(sub, FileName); err == nil {
			return sub, "builtin:" + name, nil
		}
	}
	return nil, "", &DefinitionError{File: arg, Msg: fmt.Sprintf("no %s there and no built-in definition of that name (built-in: %s)", FileName, strings.Join(Builtin(), ", "))}
}

// Dir returns the folder on disk behind a definition opened from disk, or ""
// for a built-in one.
func (d *Definition) Dir() string {
	if strings.HasPrefix(d.Path, "builtin:") {
		return ""
	}
	return d.Path
}

// Find opens (see Open) and loads (see Load) the definition arg names,
// with overrides.
func Find(arg string, overrides map[string]string) (*Definition, error) {
	fsys, name, err := Open(arg)
	if err != nil {
		return nil, err
	}
	return Load(fsys, name, overrides)
}
