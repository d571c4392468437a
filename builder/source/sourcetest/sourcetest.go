// Package sourcetest makes the OpenPGP keys and signatures that tests of
// signed downloads need (a release manager's key, a detached signature of
// a tarball, an archive's clearsigned InRelease). Only tests import it.
package sourcetest

import (
	"bytes"
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
