package update

import (
	"bytes"
	"context"
	"crypto"
	"crypto/dsa"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source/sourcetest"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
)

// realFixture is a real InRelease (testdata/apt/README says where from)
// and the keyring an image of that distribution trusts.
func realFixture(t *testing.T, release, keyring string) ([]byte, openpgp.EntityList) {
	t.Helper()
	data, err := os.ReadFile("testdata/apt/" + release)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := os.ReadFile("testdata/apt/" + keyring)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := aptKeys(map[string][]byte{keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	return data, keys
}

// What Debian and Ubuntu publish is accepted with what their images trust,
// and read as apt reads it; the same file is refused where apt refuses it.
func TestReadInRelease_Real(t *testing.T) {
	for _, fx := range []struct {
		release, keyring string
		// suite and codename as the file says them, and another suite's
		// name under which it must be refused.
		suite, codename, other string
		// date is an hour after its Date (signed a moment after that; a
		// signature made after now does not verify); expired past its
		// Valid-Until, if it has one.
		date, expired time.Time
		// byHash and the main amd64 Packages.xz it lists.
		byHash bool
		xz     indexSum
	}{
		{release: "debian-trixie-security.InRelease", keyring: "debian-archive-keyring.pgp",
			suite: "stable-security", codename: "trixie-security", other: "trixie",
			date: time.Date(2026, 12, 4, 4, 54, 29, 0, time.UTC), expired: time.Date(2026, 12, 11, 3, 54, 30, 0, time.UTC),
			byHash: true, xz: indexSum{sha256: "52ffcc0c645093b3d07fc680350e4c0278a87b3f07f8d04afccd070f19beb01b", size: 314964}},
		// Ubuntu lists no Valid-Until, and its Codename is the release's:
		// noble-security is named by its Suite.
		{release: "ubuntu-noble-security.InRelease", keyring: "ubuntu-archive-keyring.gpg",
			suite: "noble-security", codename: "noble", other: "noble-updates",
			date:   time.Date(2026, 12, 4, 22, 49, 13, 0, time.UTC),
			byHash: true, xz: indexSum{sha256: "3ba8cac611d32f26fcc3eb14a9fe6b223b0eb56c8e235fc5c8b9c063d20efcce", size: 1263896}},
		// Launchpad pads an hour below 10 with a space ("Fri, 04 Dec 2026
		// 3:56:10 UTC", two spaces before the 3): its age must still be
		// told.
		{release: "ubuntu-noble-updates.InRelease", keyring: "ubuntu-archive-keyring.gpg",
			suite: "noble-updates", codename: "noble", other: "noble-security",
			date:   time.Date(2026, 12, 4, 4, 56, 10, 0, time.UTC),
			byHash: true, xz: indexSum{sha256: "5b76fe7af093d1e13564b4b563b637b73e09233f03d6e9c32e5bdd68ecc1df4f", size: 1509936}},
	} {
		t.Run(fx.release, func(t *testing.T) {
			release, keys := realFixture(t, fx.release, fx.keyring)
			names := []string{fx.suite, fx.codename}
			if strings.HasPrefix(fx.release, "ubuntu-") {
				// Its Codename is the release's, not this pocket's.
				names = names[:1]
			}
			for _, name := range names {
				idx, err := readInRelease(release, name, keys, fx.date)
				if err != nil {
					t.Fatalf("as %s: %v", name, err)
				}
				if idx.suite != fx.suite || idx.codename != fx.codename || idx.byHash != fx.byHash || idx.files["main/binary-amd64/Packages.xz"] != fx.xz {
					t.Fatalf("read %q %q by-hash %t, main amd64 xz %+v", idx.suite, idx.codename, idx.byHash, idx.files["main/binary-amd64/Packages.xz"])
				}
			}
			// Its Date bounds a replay where there is no Valid-Until.
			idx, _ := readInRelease(release, fx.suite, keys, fx.date)
			if want := fx.date.Add(-time.Hour); !idx.date.Equal(want) {
				t.Errorf("Date read as %v, want %v", idx.date, want)
			}
			if err := idx.fresh(fx.suite, DefaultAptMaxAge, fx.date); err != nil {
				t.Errorf("an hour old: %v", err)
			}
			if err := idx.fresh(fx.suite, DefaultAptMaxAge, fx.date.Add(8*24*time.Hour)); err == nil || !errors.Is(err, errs.ErrIntegrity) {
				t.Errorf("8 days old: %v, want an integrity error", err)
			}
			flipped := bytes.Replace(release, []byte("Packages.xz"), []byte("Packages.XZ"), 1)
			type refusal struct {
				name, suite string
				data        []byte
				keys        openpgp.EntityList
				now         time.Time
				want        string
			}
			refusals := []refusal{
				{"another suite's", fx.other, release, keys, fx.date, fmt.Sprintf("that of suite %q", fx.suite)},
				{"one byte of the signed text changed", fx.suite, flipped, keys, fx.date, "signature"},
				{"no key of the signers", fx.suite, release, keys[1:2], fx.date, "not signed by any of the 1 keys"},
				{"no keys at all", fx.suite, release, nil, fx.date, "no apt keyring"},
			}
			if !fx.expired.IsZero() {
				refusals = append(refusals, refusal{"past its Valid-Until", fx.suite, release, keys, fx.expired, "(Valid-Until)"})
			}
			for _, tc := range refusals {
				_, err := readInRelease(tc.data, tc.suite, tc.keys, tc.now)
				if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrIntegrity) {
					t.Errorf("%s: %v, want an integrity error saying %q", tc.name, err, tc.want)
				}
			}
		})
	}
}

// Debian signs with two keys. The OpenPGP library checks only the first
// signature by a key it holds, so once the first signer's key has expired
// (bookworm's security key, 2031-01-19) it refuses a file the trixie key
// still vouches for; apt accepts any good signature, and so does this.
func TestVerifyAny_ExpiredFirstSigner(t *testing.T) {
	release, keys := realFixture(t, "debian-trixie-security.InRelease", "debian-archive-keyring.pgp")
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
	const (
		trustedAsc     = "etc/apt/trusted.gpg.d/debian-archive-trixie-security-automatic.asc"
		archiveKeyring = "usr/share/keyrings/debian-archive-keyring.pgp"
	)
	other := archiveKeys(t)[1].public
	type setup struct {
		a        *fakeArchive
		keyrings map[string]string // the image's, by path
		publish  func()            // publishes the three suites, signed with a.key
		extra    map[string][]byte
		now      time.Time
		maxAge   time.Duration
	}
	daysAgo := func(d int) string {
		return "Date: " + time.Now().Add(-time.Duration(d)*24*time.Hour).UTC().Format(time.RFC1123) + "\n"
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
			s.keyrings, s.extra = map[string]string{trustedAsc: other}, map[string][]byte{"mirror.asc": []byte(s.a.keyring(t))}
		}},
		{name: "not signed", want: "not a clearsigned", tamper: func(t *testing.T, s *setup) {
			s.a.files["/debian-security/dists/trixie-security/InRelease"] = []byte("Suite: trixie-security\nCodename: trixie-security\n")
		}},
		{name: "signed by another key", want: "not signed by any of the 1 keys", tamper: func(t *testing.T, s *setup) {
			s.keyrings = map[string]string{trustedAsc: other}
		}},
		{name: "no keyring in the image and none given", want: "no apt keyring", input: true, tamper: func(t *testing.T, s *setup) {
			s.keyrings = nil
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
			s.a.release(t, "/debian-security", "trixie-security", "Suite: trixie-security\nCodename: trixie-security\n"+daysAgo(0)+"SHA256:\n")
		}},
		// Ubuntu's suites have no Valid-Until: a signed InRelease of a
		// security or updates suite, however old, would verify for ever.
		{name: "a security suite's InRelease older than the bound, replayed", want: "(--apt-max-age)", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", daysAgo(8), pending, "")
		}},
		{name: "an updates suite's, replayed", want: "(--apt-max-age)", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian", "trixie-updates", daysAgo(30), "", "gz")
		}},
		{name: "a security suite's within the bound", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", daysAgo(6), pending, "")
		}},
		{name: "the bound raised", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", daysAgo(8), pending, "")
			s.maxAge = 10 * 24 * time.Hour
		}},
		{name: "no bound", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", daysAgo(400), pending, "")
			s.maxAge = -1
		}},
		// Where the archive bounds the file itself (Debian's Valid-Until),
		// that bound is the one, as --apt-max-age says.
		{name: "a security suite's with a Valid-Until still ahead", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", daysAgo(8)+"Valid-Until: "+time.Now().Add(24*time.Hour).UTC().Format(time.RFC1123)+"\n", pending, "")
		}},
		{name: "a security suite's with a Date that is not one", want: "is not a date", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian-security", "trixie-security", "Date: last week\n", pending, "")
		}},
		{name: "a security suite's without a Date", want: "no Date", tamper: func(t *testing.T, s *setup) {
			s.a.release(t, "/debian-security", "trixie-security", "Suite: trixie-security\nCodename: trixie-security\nSHA256:\n")
		}},
		{name: "the release suite, published long ago, is not bounded", tamper: func(t *testing.T, s *setup) {
			s.a.suite(t, "/debian", "trixie", daysAgo(500), stanza("openssl", "3.5.1-1", "amd64"), "xz")
		}},
		{name: "a mirror updated since its InRelease still serves the listed index by hash", tamper: func(t *testing.T, s *setup) {
			s.a.files["/debian-security/dists/trixie-security/main/binary-amd64/Packages"] = []byte(stanza("openssl", "3.5.1-1+deb13u2", "amd64"))
		}},
		// A keyring apt cannot read (a GnuPG keybox saved as .gpg, a
		// common mistake; a cut .asc) makes apt warn and ignore that
		// file: not the whole check, while the archive's keyring is there.
		{name: "an unreadable keyring next to the archive's is skipped", tamper: func(t *testing.T, s *setup) {
			s.keyrings = map[string]string{
				archiveKeyring:                     s.a.keyring(t),
				"etc/apt/trusted.gpg.d/vendor.gpg": "\x00\x00\x00\x20\x01\x01\x00\x00KBXf" + strings.Repeat("\x00", 20),
				"etc/apt/trusted.gpg.d/cut.asc":    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n",
			}
		}},
		// Debian's and Ubuntu's default sources (trixie, noble) name the
		// archive keyring with Signed-By, so apt trusts only it for the
		// archive: a vendor's key in trusted.gpg.d cannot sign
		// deb.debian.org's InRelease, and here neither may it.
		{name: "a vendor's key in trusted.gpg.d signing the archive", want: "not signed by any", tamper: func(t *testing.T, s *setup) {
			s.keyrings = map[string]string{archiveKeyring: s.a.keyring(t), "etc/apt/trusted.gpg.d/vendor.asc": other}
			s.a.key = archiveKeys(t)[1].entity
			s.publish()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeArchive(t)
			s := &setup{a: a, keyrings: map[string]string{trustedAsc: a.keyring(t)}, now: time.Now()}
			s.publish = func() {
				a.suite(t, "/debian", "trixie", "", stanza("openssl", "3.5.1-1", "amd64"), "xz")
				a.suite(t, "/debian", "trixie-updates", "", "", "gz")
				a.suite(t, "/debian-security", "trixie-security", "", pending, "")
			}
			s.publish()
			tc.tamper(t, s)
			files := map[string]string{
				"etc/os-release":      "ID=debian\nVERSION_CODENAME=trixie\n",
				"var/lib/dpkg/status": stanza("openssl", "3.5.1-1", "amd64"),
			}
			maps.Copy(files, s.keyrings)
			def := &images.Definition{Path: "x", Base: images.Base{Image: "scratch"}, Vars: map[string]string{"os.index": "none"}}
			rep := Check(context.Background(), def, Options{Kinds: []string{KindOS}, Image: imageWith(t, files),
				AptKeyrings: s.extra, Now: func() time.Time { return s.now }, AptMaxAge: s.maxAge,
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

// Ubuntu names every pocket of a release with the release's Codename
// (noble-security, noble-updates, noble-proposed, noble-backports: all
// "Codename: noble"), so Codename alone does not identify the base
// suite: a pocket's InRelease, replayed as the base suite's, must be
// refused (its Suite names the pocket).
func TestReadInRelease_UbuntuPocketIsNotItsRelease(t *testing.T) {
	release, keys := realFixture(t, "ubuntu-noble-security.InRelease", "ubuntu-archive-keyring.gpg")
	now := time.Date(2026, 12, 4, 22, 49, 13, 0, time.UTC).Add(time.Hour)
	if _, err := readInRelease(release, "noble-security", keys, now); err != nil {
		t.Fatalf("as its own suite: %v", err)
	}
	_, err := readInRelease(release, "noble", keys, now)
	if err == nil || !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), `that of suite "noble-security"`) {
		t.Fatalf("noble-security's InRelease read as noble's: %v", err)
	}
	// The same shape, signed here: a proposed pocket as the release.
	k := archiveKeys(t)[0].entity
	proposed := sourcetest.ClearSign(t, "Suite: noble-proposed\nCodename: noble\nSHA256:\n", k)
	if _, err := readInRelease(proposed, "noble", openpgp.EntityList{k}, time.Now()); err == nil {
		t.Fatal("noble-proposed's InRelease read as noble's")
	}
	// Debian's are unaffected: Suite is the alias, Codename the name.
	deb := sourcetest.ClearSign(t, "Suite: stable\nCodename: trixie\nSHA256:\n", k)
	if _, err := readInRelease(deb, "trixie", openpgp.EntityList{k}, time.Now()); err != nil {
		t.Fatalf("Debian trixie: %v", err)
	}
}

// apt refuses an InRelease whose only good signature uses a weak digest
// (SHA-1, MD5, RIPEMD-160); the v1 OpenPGP API used here ignores
// Config.RejectMessageHashAlgorithms, so the check must be made here. The
// library will not clearsign with those: the signature is made by hand.
func TestReadInRelease_WeakDigestRefused(t *testing.T) {
	k := archiveKeys(t)[0].entity
	text := "Suite: trixie\nCodename: trixie\nSHA256:"
	signed := func(h crypto.Hash) []byte {
		sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: k.PrivateKey.PubKeyAlgo,
			Hash: h, CreationTime: time.Now().Add(-time.Minute), IssuerKeyId: &k.PrivateKey.KeyId}
		hh, err := sig.PrepareSign(nil)
		if err != nil {
			t.Fatal(err)
		}
		hh.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
		no := false
		if err := sig.Sign(hh, k.PrivateKey, &packet.Config{NonDeterministicSignaturesViaNotation: &no}); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.WriteString("-----BEGIN PGP SIGNED MESSAGE-----\nHash: " + map[crypto.Hash]string{crypto.SHA1: "SHA1", crypto.SHA256: "SHA256"}[h] + "\n\n" + text + "\n")
		w, err := armor.Encode(&b, "PGP SIGNATURE", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sig.Serialize(w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		b.WriteString("\n")
		return b.Bytes()
	}
	if _, err := readInRelease(signed(crypto.SHA256), "trixie", openpgp.EntityList{k}, time.Now()); err != nil {
		t.Fatalf("the control, signed with SHA-256: %v", err)
	}
	_, err := readInRelease(signed(crypto.SHA1), "trixie", openpgp.EntityList{k}, time.Now())
	if err == nil || !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "weak digest") {
		t.Errorf("signed with SHA-1: %v, want an integrity error", err)
	}
}

// The clearsigned framing an attacker controls (line ends, dash-escapes,
// trailing blanks, the unsigned Hash header, text around the message)
// either leaves the signed text as signed or is refused: what is parsed
// is always what was signed.
func TestReadInRelease_ClearsignFraming(t *testing.T) {
	release, keys := realFixture(t, "debian-trixie-security.InRelease", "debian-archive-keyring.pgp")
	now := time.Date(2026, 12, 4, 4, 54, 29, 0, time.UTC)
	want, err := readInRelease(release, "trixie-security", keys, now)
	if err != nil {
		t.Fatal(err)
	}
	other := sourcetest.ClearSign(t, "Suite: trixie-security\nCodename: trixie-security\nSHA256:\n", archiveKeys(t)[1].entity)
	headers := bytes.Index(release, []byte("\n\n"))
	for _, tc := range []struct {
		name    string
		data    []byte
		refused bool
	}{
		{name: "CRLF line ends", data: bytes.ReplaceAll(release, []byte("\n"), []byte("\r\n"))},
		{name: "blank lines before", data: append([]byte("\n\n"), release...)},
		{name: "a dash-escaped line", data: bytes.Replace(release, []byte("\nSuite:"), []byte("\n- Suite:"), 1)},
		{name: "trailing blanks on a line", data: bytes.Replace(release, []byte("\nSHA256:\n"), []byte("\nSHA256: \t\n"), 1)},
		{name: "a Hash header naming another digest", data: slices.Concat(release[:headers], []byte("\nHash: MD5"), release[headers:])},
		{name: "text before", data: slices.Concat([]byte("Suite: trixie-security\n"), release), refused: true},
		{name: "another signed message after", data: slices.Concat(release, other), refused: true},
		{name: "another signed message before", data: slices.Concat(other, release), refused: true},
		{name: "text after", data: slices.Concat(release, []byte("x")), refused: true},
	} {
		got, err := readInRelease(tc.data, "trixie-security", keys, now)
		switch {
		case tc.refused && (err == nil || !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "outside its signed message")):
			t.Errorf("%s: %v, want it refused", tc.name, err)
		case !tc.refused && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.refused && (got.suite != want.suite || !maps.Equal(got.files, want.files)):
			t.Errorf("%s: read otherwise than signed", tc.name)
		}
	}
}

// A signature a few seconds ahead of this machine's clock (the archive's
// clock runs ahead, the file was signed a moment ago) verifies; one
// minutes ahead does not.
func TestReadInRelease_ClockSlack(t *testing.T) {
	k := archiveKeys(t)[0].entity
	signed := sourcetest.ClearSign(t, "Suite: trixie\nCodename: trixie\nSHA256:\n", k)
	for _, tc := range []struct {
		behind time.Duration
		ok     bool
	}{{5 * time.Second, true}, {2 * time.Minute, false}} {
		_, err := readInRelease(signed, "trixie", openpgp.EntityList{k}, time.Now().Add(-tc.behind))
		if (err == nil) != tc.ok {
			t.Errorf("clock %s behind the signature: %v", tc.behind, err)
		}
	}
}

// apt 3's Sequoia policy refuses signatures by RSA keys under 2048 bits
// and by DSA keys (default-sequoia.config: dsa* = 2024-02-01): so does
// this, where the OpenPGP library would accept them.
func TestReadInRelease_WeakKeyRefused(t *testing.T) {
	text := "Suite: trixie\nCodename: trixie\nSHA256:\n"
	for _, tc := range []struct {
		bits int
		want string
	}{{1024, "RSA key of 1024 bits"}, {2048, ""}} {
		k, err := openpgp.NewEntity("Small", "", "small@example.invalid", &packet.Config{RSABits: tc.bits})
		if err != nil {
			t.Fatal(err)
		}
		_, err = readInRelease(sourcetest.ClearSign(t, text, k), "trixie", openpgp.EntityList{k}, time.Now())
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrIntegrity)) {
			t.Errorf("RSA %d: %v, want %q", tc.bits, err, tc.want)
		}
	}
	var params dsa.Parameters
	if err := dsa.GenerateParameters(&params, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	priv := &dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: params}}
	if err := dsa.GenerateKey(priv, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := weakKey(packet.NewDSAPublicKey(time.Now(), &priv.PublicKey)); err == nil || !strings.Contains(err.Error(), "DSA") {
		t.Errorf("a DSA key: %v", err)
	}
}

// Release dates as Debian's archive and Launchpad (Ubuntu, the hour
// padded with a space) write them, and with a numeric zone.
func TestParseReleaseDate(t *testing.T) {
	want := time.Date(2026, 12, 4, 3, 56, 10, 0, time.UTC)
	for _, v := range []string{
		"Fri, 04 Dec 2026 03:56:10 UTC",
		"Fri, 04 Dec 2026  3:56:10 UTC",
		"Fri, 04 Dec 2026 03:56:10 +0000",
		"Fri, 04 Dec 2026 05:56:10 +0200",
		"Fri, 04 Dec 2026  5:56:10 +0200",
	} {
		got, err := parseReleaseDate(v)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "yesterday", "Fri, 04 Dec 2026 24:56:10 UTC"} {
		if got, err := parseReleaseDate(v); err == nil {
			t.Errorf("%q: read as %v", v, got)
		}
	}
}
