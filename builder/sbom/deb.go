package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/agentforge/agentforge/images/deb822"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Bounds on what is read of a .deb to find its control file.
const (
	maxDebControlMember = 16 << 20
	maxDebControlFile   = 1 << 20
)

// debControl is the part of a Debian package's control file the SBOM
// uses. The version carries the epoch, which package file names leave out
// (busybox-static_1.35.0-4+deb12u1+b1_amd64.deb is version
// 1:1.35.0-4+deb12u1+b1).
type debControl struct {
	Package, Version, Architecture string
}

// readDebControl reads the control file of the .deb at path: an ar
// archive whose control.tar (plain, .gz, .xz or .zst) holds ./control.
func readDebControl(path string) (debControl, error) {
	f, err := os.Open(path)
	if err != nil {
		return debControl{}, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "!<arch>\n" {
		return debControl{}, errors.New("not an ar archive")
	}
	for {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(r, hdr); err != nil {
			return debControl{}, errors.New("no control.tar member")
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 || string(hdr[58:60]) != "`\n" {
			return debControl{}, fmt.Errorf("ar member %q: bad header", name)
		}
		if !strings.HasPrefix(name, "control.tar") {
			if _, err := r.Discard(int(size + size%2)); err != nil {
				return debControl{}, fmt.Errorf("ar member %q: %w", name, err)
			}
			continue
		}
		if size > maxDebControlMember {
			return debControl{}, fmt.Errorf("%s: %d bytes, more than %d", name, size, maxDebControlMember)
		}
		return controlFromTar(name, io.LimitReader(r, size))
	}
}

// controlDecoders open a control.tar member by the compression its name
// says; a decoder that holds resources is an io.Closer.
var controlDecoders = map[string]func(io.Reader) (io.Reader, error){
	"control.tar":    func(r io.Reader) (io.Reader, error) { return r, nil },
	"control.tar.gz": func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
	"control.tar.xz": func(r io.Reader) (io.Reader, error) { return xz.NewReader(r) },
	"control.tar.zst": func(r io.Reader) (io.Reader, error) {
		z, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return z.IOReadCloser(), nil
	},
}

func controlFromTar(name string, member io.Reader) (debControl, error) {
	decode, ok := controlDecoders[name]
	if !ok {
		return debControl{}, fmt.Errorf("%s: unknown compression", name)
	}
	tr, err := decode(member)
	if err != nil {
		return debControl{}, fmt.Errorf("%s: %w", name, err)
	}
	if c, ok := tr.(io.Closer); ok {
		defer c.Close()
	}
	t := tar.NewReader(tr)
	for {
		h, err := t.Next()
		if err != nil {
			return debControl{}, fmt.Errorf("%s: no ./control: %w", name, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "control" || h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(t, maxDebControlFile+1))
		if err != nil {
			return debControl{}, fmt.Errorf("%s: ./control: %w", name, err)
		}
		if len(data) > maxDebControlFile {
			return debControl{}, fmt.Errorf("%s: ./control larger than %d bytes", name, maxDebControlFile)
		}
		return parseControl(data)
	}
}

// parseControl reads the first paragraph's Package, Version and
// Architecture fields (deb-control(5)).
func parseControl(data []byte) (debControl, error) {
	p, err := deb822.NewReader(bytes.NewReader(data), "control file", "package", "version", "architecture").Next()
	if err != nil && !errors.Is(err, io.EOF) {
		return debControl{}, err
	}
	c := debControl{Package: p.Fields["package"], Version: p.Fields["version"], Architecture: p.Fields["architecture"]}
	if c.Package == "" || c.Version == "" {
		return c, errors.New("control file without Package or Version")
	}
	return c, nil
}
