package demo

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"go.podman.io/image/v5/pkg/compression"
	"golang.org/x/crypto/blake2b"
)

// PyPIFiles is where PyPI serves distribution files; a file's path is
// packages/ + its BLAKE2b-256 in hex split 2/2/60 + / + its name.
const PyPIFiles = "https://files.pythonhosted.org/"

// debianWheel is one of Debian 13's *-whl packages, which carry a wheel as
// upstream builds it (Debian's python3-venv installs them into every venv):
// the demo's stand-in for the same project's wheel from PyPI.
type debianWheel struct {
	project string
	deb     string // path in the archive
	sha256  string // of the .deb, from trixie's Packages index
}

// standInWheels are the wheels the demo installs instead of the
// definition's pip, setuptools, wheel and packaging: Debian 13 (trixie)'s
// own, in the versions trixie's Packages index listed (main, 2026-12).
var standInWheels = []debianWheel{
	{"pip", "pool/main/p/python-pip/python3-pip-whl_25.1.1+dfsg-1_all.deb", "e65351935aa4af2b10ae2abb5744f5059e9abad51aea6cd0cb825702010763f7"},
	{"setuptools", "pool/main/s/setuptools/python3-setuptools-whl_78.1.1-0.1_all.deb", "0caf134e73ab90ffeaa5ce2529d73ea7d48078b2a9251ed9d1b7b514a61e9483"},
	{"wheel", "pool/main/w/wheel/python3-wheel-whl_0.46.1-2_all.deb", "1a1aacd0f51ca2bb62b4b7395286f461adfb53f4b6e0f8cfe7b28b6ea04c3f3d"},
	{"packaging", "pool/main/p/python-packaging/python3-packaging-whl_25.0-1_all.deb", "ca239f65466b2c87b6cf9ceff19a328464afa65fd744f6e13735be999cd7b21d"},
}

// pypiWheel is a wheel laid out as PyPI serves it.
type pypiWheel struct {
	Project, Version, SHA256 string
	// Path is its path under PyPIFiles (packages/xx/yy/…/NAME).
	Path string
	// File is where it is on disk.
	File string
}

// URL is the wheel's address on PyPI.
func (w pypiWheel) URL() string { return PyPIFiles + w.Path }

var wheelNameRE = regexp.MustCompile(`^([A-Za-z0-9_]+)-([0-9][0-9A-Za-z.!+]*)-py3-none-any\.whl$`)

// prepareWheels downloads the Debian packages (checked by sha256), takes
// the wheel out of each and lays it out under dir as PyPI would serve it.
func prepareWheels(ctx context.Context, archive, dir string, fetcher *source.Fetcher) ([]pypiWheel, error) {
	var out []pypiWheel
	for _, w := range standInWheels {
		deb, err := fetcher.Fetch(ctx, images.Source{Name: w.project + "-debian", URL: strings.TrimSuffix(archive, "/") + "/" + w.deb, SHA256: w.sha256})
		if err != nil {
			return nil, fmt.Errorf("%s wheel from Debian: %w", w.project, err)
		}
		f, err := os.Open(deb.Path)
		if err != nil {
			return nil, err
		}
		name, data, err := wheelFromDeb(f, w.project)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.deb, err)
		}
		pw, err := layOut(dir, name, data)
		if err != nil {
			return nil, err
		}
		out = append(out, pw)
	}
	return out, nil
}

// layOut writes a wheel under dir at PyPI's path for it.
func layOut(dir, name string, data []byte) (pypiWheel, error) {
	m := wheelNameRE.FindStringSubmatch(name)
	if m == nil {
		return pypiWheel{}, fmt.Errorf("wheel %q: not NAME-VERSION-py3-none-any.whl", name)
	}
	b2 := blake2b.Sum256(data)
	h := hex.EncodeToString(b2[:])
	sum := sha256.Sum256(data)
	w := pypiWheel{Project: strings.ToLower(m[1]), Version: m[2], SHA256: hex.EncodeToString(sum[:]),
		Path: path.Join("packages", h[:2], h[2:4], h[4:], name)}
	w.File = filepath.Join(dir, filepath.FromSlash(w.Path))
	if err := os.MkdirAll(filepath.Dir(w.File), 0o755); err != nil {
		return w, err
	}
	return w, os.WriteFile(w.File, data, 0o644)
}

// wheelFromDeb returns the one wheel of project in a Debian package
// (usr/share/python-wheels/PROJECT-*.whl in its data archive).
func wheelFromDeb(deb io.Reader, project string) (string, []byte, error) {
	data, err := debData(deb)
	if err != nil {
		return "", nil, err
	}
	defer data.Close()
	tr := tar.NewReader(data)
	var name string
	var body []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("data archive: %w", err)
		}
		dir, file := path.Split(strings.TrimPrefix(h.Name, "./"))
		if dir != "usr/share/python-wheels/" || !strings.HasPrefix(file, project+"-") || !strings.HasSuffix(file, ".whl") {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return "", nil, fmt.Errorf("%s is not a regular file", h.Name)
		}
		if name != "" {
			return "", nil, fmt.Errorf("two %s wheels: %s and %s", project, name, file)
		}
		if h.Size > 64<<20 {
			return "", nil, fmt.Errorf("%s: %d bytes is too large for a wheel", h.Name, h.Size)
		}
		if body, err = io.ReadAll(tr); err != nil {
			return "", nil, err
		}
		name = file
	}
	if name == "" {
		return "", nil, fmt.Errorf("no usr/share/python-wheels/%s-*.whl in it", project)
	}
	return name, body, nil
}

// debData returns the decompressed data.tar of a Debian package (an ar
// archive: debian-binary, control.tar.*, data.tar.*).
func debData(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, errors.New("not a Debian package (no ar header)")
	}
	for {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return nil, errors.New("no data.tar member")
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[:16])), "/")
		var size int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(hdr[48:58])), "%d", &size); err != nil || size < 0 {
			return nil, fmt.Errorf("ar member %q: bad size", name)
		}
		if strings.HasPrefix(name, "data.tar") {
			rc, _, err := compression.AutoDecompress(io.LimitReader(br, size))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			return rc, nil
		}
		if _, err := io.CopyN(io.Discard, br, size+size%2); err != nil {
			return nil, fmt.Errorf("ar member %q: %w", name, err)
		}
	}
}

// wheelOverrides are the --set values that make the definition take w
// instead of its own wheel of the same project.
func wheelOverrides(ws []pypiWheel) map[string]string {
	m := map[string]string{}
	for _, w := range ws {
		m[w.Project+".version"] = w.Version
		m[w.Project+".sha256"] = w.SHA256
		m[w.Project+".url"] = w.URL()
	}
	return m
}

// wheelList names the wheels, for the stand-in list.
func wheelList(ws []pypiWheel, version func(project string) string) (real, instead string) {
	var a, b bytes.Buffer
	for i, w := range ws {
		if i > 0 {
			a.WriteString(", ")
			b.WriteString(", ")
		}
		fmt.Fprintf(&a, "%s %s", w.Project, version(w.Project))
		fmt.Fprintf(&b, "%s %s", w.Project, w.Version)
	}
	return a.String(), b.String()
}
