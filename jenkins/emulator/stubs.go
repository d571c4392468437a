package emulator

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// files holds the Groovy stubs of the Jenkins and Kubernetes-plugin classes,
// the runner that executes a script the way /scriptText does (and the one
// that runs several at once), and the configuration-as-code applier. Embedded, so that an agentforge binary
// runs the emulator (agentforge demo) without a source checkout.
//
//go:embed runner.groovy threads.groovy casc.groovy stubs stubs-kubernetes-1.27.1 stubs-casc
var files embed.FS

// A part is one set of stub classes compiled together: Jenkins core, the
// Kubernetes plugin (or an older release of it: the files of variant
// replace the same paths of stubs/org), the configuration-as-code plugin.
type part struct {
	name    string
	dirs    []string // under stubs/
	variant string   // a folder whose files replace stubs/<same path>
	root    string   // the folder dirs are under; default "stubs"
}

var (
	partCore   = part{name: "core", dirs: []string{"hudson", "jenkins"}}
	partPlugin = part{name: "kubernetes", dirs: []string{"org"}}
	partOld    = part{name: "kubernetes-1.27.1", dirs: []string{"org"}, variant: "stubs-kubernetes-1.27.1"}
	partCasc   = part{name: "casc", dirs: []string{"io"}, root: "stubs-casc"}
)

var (
	compiledMu sync.Mutex
	compiled   = map[string]string{} // part key -> classes folder
)

// classpath compiles the parts (each once per process and machine: the
// classes are kept in the user's cache directory under a digest of their
// sources) and returns the class path: core first.
func classpath(parts ...part) (string, error) {
	compiledMu.Lock()
	defer compiledMu.Unlock()
	if _, err := exec.LookPath("groovyc"); err != nil {
		return "", fmt.Errorf("groovyc not found: install Debian's groovy and default-jre-headless (make deps does)")
	}
	var dirs []string
	deps := ""
	for _, p := range parts {
		dir, err := compile(p, strings.Join(dirs, string(os.PathListSeparator)), deps)
		if err != nil {
			return "", err
		}
		dirs = append(dirs, dir)
		deps += dir
	}
	return strings.Join(dirs, string(os.PathListSeparator)), nil
}

// sources lists a part's files: embedded path -> path relative to the
// package root (where groovyc wants them), variant files in place of the
// plain ones.
func sources(p part) (map[string]string, error) {
	root := p.root
	if root == "" {
		root = "stubs"
	}
	out := map[string]string{}
	for _, d := range p.dirs {
		err := fs.WalkDir(files, path.Join(root, d), func(name string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(name, ".groovy") {
				return err
			}
			rel := strings.TrimPrefix(name, root+"/")
			src := name
			if p.variant != "" {
				if _, err := fs.Stat(files, path.Join(p.variant, rel)); err == nil {
					src = path.Join(p.variant, rel)
				}
			}
			out[src] = rel
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// compile compiles one part against cp into the cache, unless it is there.
func compile(p part, cp, deps string) (string, error) {
	srcs, err := sources(p)
	if err != nil {
		return "", err
	}
	// The key covers the sources and what they were compiled against.
	h := sha256.New()
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data, _ := files.ReadFile(n)
		fmt.Fprintf(h, "%s\x00%d\x00", srcs[n], len(data))
		h.Write(data)
	}
	h.Write([]byte(deps))
	key := p.name + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	if dir, ok := compiled[key]; ok {
		return dir, nil
	}
	cache := cacheDir()
	final := filepath.Join(cache, key)
	if _, err := os.Stat(filepath.Join(final, ".complete")); err == nil {
		compiled[key] = final
		return final, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	// Compile into a folder of our own, then rename it into place: another
	// process may be doing the same.
	work, err := os.MkdirTemp(cache, ".compile-"+p.name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	srcDir, out := filepath.Join(work, "src"), filepath.Join(work, "classes")
	args := []string{"-d", out}
	if cp != "" {
		args = append(args, "-cp", cp)
	}
	for _, n := range names {
		dst := filepath.Join(srcDir, filepath.FromSlash(srcs[n]))
		data, _ := files.ReadFile(n)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", err
		}
		args = append(args, dst)
	}
	if msg, err := exec.Command("groovyc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("compile Groovy stubs (%s): %v\n%s", p.name, err, msg)
	}
	if err := os.WriteFile(filepath.Join(out, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(out, final); err != nil {
		if _, serr := os.Stat(filepath.Join(final, ".complete")); serr != nil {
			return "", fmt.Errorf("compile Groovy stubs (%s): %w", p.name, errors.Join(err, serr))
		}
	}
	compiled[key] = final
	return final, nil
}

// cacheDir is where compiled stubs are kept: $AGENTFORGE_EMULATOR_CACHE, or
// agentforge/jenkins-emulator in the user's cache directory, or the
// temporary directory.
func cacheDir() string {
	if d := os.Getenv("AGENTFORGE_EMULATOR_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "agentforge", "jenkins-emulator")
	}
	return filepath.Join(os.TempDir(), "agentforge-jenkins-emulator")
}

// writeFile copies an embedded file to dir and returns its path.
func writeFile(dir, name string) (string, error) {
	data, err := files.ReadFile(name)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, data, 0o644)
}
