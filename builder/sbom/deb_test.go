package sbom

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/source"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// writeDeb writes an ar archive like dpkg-deb's: debian-binary, then the
// control member (compressed as its name says) holding ./control.
func writeDeb(t *testing.T, member, control string) string {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./control", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(control))})
	tw.Write([]byte(control))
	tw.Close()
	var comp bytes.Buffer
	switch {
	case strings.HasSuffix(member, ".gz"):
		z := gzip.NewWriter(&comp)
		z.Write(tb.Bytes())
		z.Close()
	case strings.HasSuffix(member, ".xz"):
		z, _ := xz.NewWriter(&comp)
		z.Write(tb.Bytes())
		z.Close()
	case strings.HasSuffix(member, ".zst"):
		z, _ := zstd.NewWriter(&comp)
		z.Write(tb.Bytes())
		z.Close()
	default:
		comp = tb
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	add := func(name string, data []byte) {
		fmt.Fprintf(&ar, "%-16s%-12s%-6s%-6s%-8s%-10d`\n", name, "0", "0", "0", "100644", len(data))
		ar.Write(data)
		if len(data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	add("debian-binary", []byte("2.0\n"))
	add(member, comp.Bytes())
	add("data.tar.xz", []byte("x"))
	p := filepath.Join(t.TempDir(), "pkg.deb")
	if err := os.WriteFile(p, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const busyboxControl = "Package: busybox-static\nSource: busybox (1:1.35.0-4+deb12u1)\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: arm64\nDescription: Standalone rescue shell\n with tons of builtin utilities\n"

func TestReadDebControl(t *testing.T) {
	for _, member := range []string{"control.tar.xz", "control.tar.gz", "control.tar.zst", "control.tar"} {
		c, err := readDebControl(writeDeb(t, member, busyboxControl))
		if err != nil || c != (debControl{"busybox-static", "1:1.35.0-4+deb12u1+b1", "arm64"}) {
			t.Errorf("%s: %+v %v", member, c, err)
		}
	}
	for _, tc := range []struct{ name, member, control string }{
		{"no version", "control.tar.gz", "Package: x\nArchitecture: all\n"},
		{"unknown compression", "control.tar.bz2", busyboxControl},
		{"version in a second paragraph only", "control.tar.gz", "Package: x\n\nVersion: 1\n"},
	} {
		if _, err := readDebControl(writeDeb(t, tc.member, tc.control)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	notDeb := filepath.Join(t.TempDir(), "x.deb")
	os.WriteFile(notDeb, []byte("PK\x03\x04 a zip"), 0o644)
	if _, err := readDebControl(notDeb); err == nil {
		t.Error("a zip read as a .deb")
	}
}

// A .deb source is listed with its control file's name, architecture and
// version, epoch included; the file name (which has no epoch) is only the
// fallback.
func TestGenerate_DebSourceVersionFromControl(t *testing.T) {
	deb := writeDeb(t, "control.tar.xz", busyboxControl)
	sum, _, _ := hashFile(deb)
	url := "https://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb"
	in := Input{Name: "busybox-demo", Version: "1.0.0", Sources: []source.Fetched{{Name: "busybox-static", URL: url, Path: deb, SHA256: sum}}}
	doc := mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, in)
	var got *Package
	for i := range doc.Packages {
		if doc.Packages[i].Name == "busybox-static" {
			got = &doc.Packages[i]
		}
	}
	if got == nil || got.VersionInfo != "1:1.35.0-4+deb12u1+b1" || got.PURL() != "pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bdeb12u1%2Bb1?arch=arm64" {
		t.Fatalf("source package: %+v", got)
	}
	// Without a readable control file, the file name's version, and a note.
	bad := filepath.Join(t.TempDir(), "bad.deb")
	os.WriteFile(bad, []byte("not a deb"), 0o644)
	badSum, _, _ := hashFile(bad)
	in.Sources[0].Path, in.Sources[0].SHA256 = bad, badSum
	doc = mustGenerate(t, testImage{Layers: [][]entry{{fileEntry("etc/os-release", ubuntuOS)}}}, in)
	for _, p := range doc.Packages {
		if p.Name == "busybox-static" && (p.VersionInfo != "1.35.0-4+deb12u1+b1" || !strings.Contains(p.Comment, "control file unreadable")) {
			t.Errorf("fallback: %+v", p)
		}
	}
}
