package update

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
)

// debianFixture is a real InRelease of Debian's security archive and the
// keyring a trixie image trusts (testdata/debian/README says where from).
func debianFixture(t *testing.T) ([]byte, openpgp.EntityList) {
	t.Helper()
	release, err := os.ReadFile("testdata/debian/trixie-security.InRelease")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := os.ReadFile("testdata/debian/debian-archive-keyring.pgp")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := aptKeys(map[string][]byte{"debian-archive-keyring.pgp": ring})
	if err != nil {
		t.Fatal(err)
	}
	return release, keys
}

// What Debian publishes is accepted with what a trixie image trusts, and
// read as apt reads it; the same file is refused where apt refuses it.
func TestReadInRelease_Debian(t *testing.T) {
	release, keys := debianFixture(t)
	// An hour after its Date: it was signed a moment after that, and a
	// signature made after now does not verify.
	date := time.Date(2026, 12, 4, 4, 54, 29, 0, time.UTC)
	idx, err := readInRelease(release, "trixie-security", keys, date)
	if err != nil {
		t.Fatal(err)
	}
	xz := idx.files["main/binary-amd64/Packages.xz"]
	if idx.suite != "stable-security" || idx.codename != "trixie-security" || !idx.byHash ||
		xz.size != 314964 || xz.sha256 != "52ffcc0c645093b3d07fc680350e4c0278a87b3f07f8d04afccd070f19beb01b" {
		t.Fatalf("read %q %q by-hash %t, main amd64 xz %+v", idx.suite, idx.codename, idx.byHash, xz)
	}
	// By its Suite as well as its Codename, as sources.list may name it.
	if _, err := readInRelease(release, "stable-security", keys, date); err != nil {
		t.Errorf("by its Suite: %v", err)
	}
	flipped := bytes.Replace(release, []byte("Packages.xz"), []byte("Packages.XZ"), 1)
	for _, tc := range []struct {
		name, suite string
		data        []byte
		keys        openpgp.EntityList
		now         time.Time
		want        string
	}{
		{"another suite's", "trixie", release, keys, date, `that of suite "stable-security"`},
		{"past its Valid-Until", "trixie-security", release, keys, time.Date(2026, 12, 11, 3, 54, 30, 0, time.UTC), "(Valid-Until)"},
		{"one byte of the signed text changed", "trixie-security", flipped, keys, date, "signature"},
		{"no key of the signers", "trixie-security", release, keys[:3], date, "not signed by any of the 3 keys"},
		{"no keys at all", "trixie-security", release, nil, date, "no apt keyring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readInRelease(tc.data, tc.suite, tc.keys, tc.now)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("%v, want an integrity error saying %q", err, tc.want)
			}
		})
	}
}

// Debian signs with two keys. The OpenPGP library checks only the first
// signature by a key it holds, so once the first signer's key has expired
// (bookworm's security key, 2031-01-19) it refuses a file the trixie key
// still vouches for; apt accepts any good signature, and so does this.
func TestVerifyAny_ExpiredFirstSigner(t *testing.T) {
	release, keys := debianFixture(t)
	block, _ := clearsign.Decode(release)
	after := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := block.VerifySignature(keys, nil); err != nil {
		t.Fatalf("today, the library accepts it: %v", err)
	}
	if err := verifyAny(block, keys, after); err != nil {
		t.Errorf("in 2031: %v", err)
	}
	// The library alone, at that time, refuses it: the case verifyAny is
	// there for. (Should this fail, the library has learnt to try every
	// signature, and verifyAny's loop can go.)
	if _, err := openpgp.CheckDetachedSignature(keys, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, configAt(after)); err == nil {
		t.Error("in 2031 the library alone accepts it too")
	}
}

// The archive's answers as an attacker on the path to it (or to its
// mirror) could shape them: each must fail the OS check with an integrity
// error, never read as "nothing pending". The controls are accepted.
func TestCheck_OSIndexesAuthenticated(t *testing.T) {
	other := newKey(t, "Someone Else")
	type setup struct {
		a        *fakeArchive
		imageKey string // the keyring in the image ("" for none)
		extra    map[string][]byte
		now      time.Time
	}
	pending := stanza("openssl", "3.5.1-1+deb13u1", "amd64")
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, s *setup)
		want   string // "" for accepted, with the update pending
		input  bool   // the error is bad input rather than integrity
	}{
		{name: "as published", tamper: func(*testing.T, *setup) {}},
		{name: "the mirror's own key given with --apt-keyring", tamper: func(t *testing.T, s *setup) {
			s.imageKey, s.extra = armoredPublic(t, other), map[string][]byte{"mirror.asc": []byte(s.a.keyring(t))}
		}},
		{name: "not signed", want: "not a clearsigned", tamper: func(t *testing.T, s *setup) {
			s.a.files["/debian-security/dists/trixie-security/InRelease"] = []byte("Suite: trixie-security\nCodename: trixie-security\n")
		}},
		{name: "signed by another key", want: "not signed by any of the 1 keys", tamper: func(t *testing.T, s *setup) {
			s.imageKey = armoredPublic(t, other)
		}},
		{name: "no keyring in the image and none given", want: "no apt keyring", input: true, tamper: func(t *testing.T, s *setup) {
			s.imageKey = ""
		}},
		{name: "the suite's own file replaced by its base suite's (no security updates there)", want: `that of suite "trixie"`, tamper: func(t *testing.T, s *setup) {
			s.a.files["/debian-security/dists/trixie-security/InRelease"] = s.a.files["/debian/dists/trixie/InRelease"]
		}},
		{name: "an old copy past its Valid-Until", want: "(Valid-Until)", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", "Valid-Until: "+time.Now().Add(-time.Minute).UTC().Format(time.RFC1123)+"\n", pending, "")
		}},
		{name: "a copy within its Valid-Until", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", "Valid-Until: "+time.Now().Add(time.Hour).UTC().Format(time.RFC1123Z)+"\n", pending, "")
		}},
		{name: "a Valid-Until that is not a date", want: "not an RFC 1123 date", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", "Valid-Until: next week\n", pending, "")
		}},
		{name: "an old Packages index under the listed one's name and hash", want: "sha256 mismatch", tamper: func(t *testing.T, s *setup) {
			old := []byte(strings.Replace(pending, "3.5.1-1+deb13u1", "3.5.1-1+deb13u0", 1))
			for p := range s.a.files {
				if strings.Contains(p, "trixie-security/main") {
					s.a.files[p] = old
				}
			}
		}},
		{name: "the index cut short", want: "size mismatch", tamper: func(t *testing.T, s *setup) {
			for p, data := range s.a.files {
				if strings.Contains(p, "trixie-security/main") {
					s.a.files[p] = data[:len(data)-10]
				}
			}
		}},
		{name: "an unsigned SHA256 list after the signature", want: "outside its signed message", tamper: func(t *testing.T, s *setup) {
			p := "/debian-security/dists/trixie-security/InRelease"
			s.a.files[p] = append(s.a.files[p], "\nSHA256:\n 00 1 main/binary-amd64/Packages\n"...)
		}},
		{name: "no Packages index listed", want: "lists no main/binary-amd64/Packages index", tamper: func(t *testing.T, s *setup) {
			s.a.release(t, "/debian-security", "trixie-security", "Suite: trixie-security\nCodename: trixie-security\nSHA256:\n")
		}},
		{name: "a mirror updated since its InRelease still serves the listed index by hash", tamper: func(t *testing.T, s *setup) {
			s.a.files["/debian-security/dists/trixie-security/main/binary-amd64/Packages"] = []byte(stanza("openssl", "3.5.1-1+deb13u2", "amd64"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeArchive(t)
			a.suite(t, "/debian", "trixie", "", stanza("openssl", "3.5.1-1", "amd64"), "xz")
			a.suite(t, "/debian", "trixie-updates", "", "", "gz")
			a.suite(t, "/debian-security", "trixie-security", "", pending, "")
			s := &setup{a: a, imageKey: a.keyring(t), now: time.Now()}
			tc.tamper(t, s)
			files := map[string]string{
				"etc/os-release":      "ID=debian\nVERSION_CODENAME=trixie\n",
				"var/lib/dpkg/status": stanza("openssl", "3.5.1-1", "amd64"),
			}
			if s.imageKey != "" {
				files["etc/apt/trusted.gpg.d/debian-archive-trixie-security-automatic.asc"] = s.imageKey
			}
			def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Vars: map[string]string{"os.index": "none"}}
			rep := Check(context.Background(), def, Options{Kinds: []string{KindOS}, Image: imageWith(t, files),
				AptKeyrings: s.extra, Now: func() time.Time { return s.now },
				Mirrors: []remote.Mirror{{From: "http://deb.debian.org/", To: a.srv.URL + "/"}}})
			if tc.want == "" {
				if len(rep.Problems) != 0 || rep.Outdated != 1 || rep.Findings[0].Packages[0].Available != "3.5.1-1+deb13u1" {
					t.Fatalf("%+v", rep)
				}
				return
			}
			err := rep.Err()
			kind := errs.ErrIntegrity
			if tc.input {
				kind = errs.ErrInput
			}
			if len(rep.Findings) != 0 || err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, kind) {
				t.Fatalf("findings %+v, error %v; want none and an error (%v) saying %q", rep.Findings, err, kind, tc.want)
			}
		})
	}
}
