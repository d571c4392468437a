// Package sourcetest makes the OpenPGP keys and signatures that tests of
// signed downloads need (a release manager's key, a detached signature of
// a tarball). Only tests import it.
package sourcetest

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
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
