// Package sourcetest makes the OpenPGP keys and signatures that tests of
// signed downloads need (a release manager's key, a detached signature of
// a tarball, an archive's clearsigned InRelease). Only tests import it.
package sourcetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Key makes a new signing key for name and returns it, its fingerprint as
// a definition pins it (40 upper-case hex digits), and its armored public
// part as a keyserver serves it.
func Key(t testing.TB, name string) (*openpgp.Entity, string, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "agentforge test key", strings.ReplaceAll(name, " ", "-")+"@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)), buf.Bytes()
}

// Sign is e's armored detached signature of data.
func Sign(t testing.TB, e *openpgp.Entity, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ClearSign is text clearsigned by each of keys, as an apt archive signs
// its InRelease.
func ClearSign(t testing.TB, text string, keys ...*openpgp.Entity) []byte {
	t.Helper()
	var priv []*packet.PrivateKey
	for _, k := range keys {
		priv = append(priv, k.PrivateKey)
	}
	var buf bytes.Buffer
	w, err := clearsign.EncodeMulti(&buf, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PythonTarball is a stand-in for python.org's Python-VERSION.tar.xz (or
// .tgz): a gzip-compressed tar whose one file is under Python-VERSION/,
// as CPython's release tarballs name their top folder.
func PythonTarball(t testing.TB, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("This is Python version " + version + "\n")
	for _, h := range []*tar.Header{
		{Name: "Python-" + version + "/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "Python-" + version + "/README.rst", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
