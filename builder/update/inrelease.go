package update

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/agentforge/agentforge/images/deb822"
	"github.com/agentforge/agentforge/images/errs"
)

// An archive's indexes are read only once their suite's InRelease file is
// authenticated the way apt authenticates it (apt-secure(8)): signed by a
// key the image's apt trusts, naming the suite asked for, not expired, and
// listing the SHA256 and size of every index read. Without this, anyone on
// the path to the archive or its mirror could serve old indexes and hide
// pending security updates from the nightly check.

// releaseIndex is what an authenticated InRelease file says.
type releaseIndex struct {
	suite, codename string
	// date is the file's Date (zero when it has none or it is not a
	// date): when the archive published it; dateText is the field as
	// written.
	date     time.Time
	dateText string
	// validUntil is its Valid-Until (zero when it has none).
	validUntil time.Time
	// byHash is Acquire-By-Hash: the indexes can be fetched by their
	// SHA256 (dir/by-hash/SHA256/HEX), which a mirror updated between
	// two requests still serves unchanged.
	byHash bool
	// files are the indexes the file lists, by path under the suite
	// (main/binary-amd64/Packages.xz).
	files map[string]indexSum
}

// indexSum is an index's SHA256 (hex) and size, as its InRelease lists it.
type indexSum struct {
	sha256 string
	size   int64
}

// maxReleaseFiles bounds how many index files one InRelease may list
// (Debian's main suite lists about 2,000 for SHA256).
const maxReleaseFiles = 100000

// aptKeys reads keyrings, binary or ASCII-armored, by name (a path, for
// messages), into one list of keys.
func aptKeys(keyrings map[string][]byte) (openpgp.EntityList, error) {
	var keys openpgp.EntityList
	for _, name := range slices.Sorted(maps.Keys(keyrings)) {
		data := keyrings[name]
		var el openpgp.EntityList
		var err error
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
			el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
		} else {
			el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
		}
		if err != nil {
			return nil, fmt.Errorf("apt keyring %s: %w", name, err)
		}
		keys = append(keys, el...)
	}
	return keys, nil
}

// imageAptKeys are the keys apt in an image of os trusts to sign its
// distribution's archive, from the image's keyrings (by path from the
// root, as sbom.Inventory holds them). Where the distribution's archive
// keyring is (/usr/share/keyrings/debian-archive-keyring.pgp or .gpg,
// ubuntu-archive-keyring.gpg), only it: that is the keyring Debian's and
// Ubuntu's default sources name with Signed-By, so apt trusts no other
// key for the archive, and a vendor's key in trusted.gpg.d must not sign
// deb.debian.org's InRelease here either. Else, as apt does for a source
// without Signed-By, /etc/apt/trusted.gpg and trusted.gpg.d's keyrings.
// A keyring that cannot be read (a GnuPG keybox named .gpg, a cut .asc)
// is skipped, as apt warns and ignores it; skipped says which and why.
func imageAptKeys(keyrings map[string][]byte, os string) (keys openpgp.EntityList, skipped []string) {
	archive := map[string][]byte{}
	for _, p := range []string{"/usr/share/keyrings/" + os + "-archive-keyring.pgp", "/usr/share/keyrings/" + os + "-archive-keyring.gpg"} {
		if data, ok := keyrings[p]; ok {
			archive[p] = data
		}
	}
	read := func(rings map[string][]byte, keep func(string) bool) {
		for _, name := range slices.Sorted(maps.Keys(rings)) {
			if !keep(name) {
				continue
			}
			el, err := aptKeys(map[string][]byte{name: rings[name]})
			if err != nil {
				skipped = append(skipped, err.Error())
				continue
			}
			keys = append(keys, el...)
		}
	}
	read(archive, func(string) bool { return true })
	if len(keys) > 0 {
		return keys, skipped
	}
	read(keyrings, func(p string) bool {
		return p == "/etc/apt/trusted.gpg" || strings.HasPrefix(p, "/etc/apt/trusted.gpg.d/")
	})
	return keys, skipped
}

// readInRelease authenticates data, the InRelease file of suite, with
// keys at the time now, and returns what it lists. It is an error when
// the file is not one clearsigned message (apt refuses text outside it),
// when no signature in it verifies with one of keys (any one is enough,
// as for apt: Debian signs with two keys), when its Suite and Codename
// both differ from suite (a signed file of another suite, replayed to hide
// this one's updates) or its Codename is suite but its Suite a pocket of
// it (Ubuntu's noble-proposed is "Codename: noble"), or when its
// Valid-Until has passed.
func readInRelease(data []byte, suite string, keys openpgp.EntityList, now time.Time) (*releaseIndex, error) {
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, errs.Integrityf("InRelease of %s is not a clearsigned OpenPGP message", suite)
	}
	if len(bytes.TrimSpace(rest)) > 0 || !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, errs.Integrityf("InRelease of %s has text outside its signed message", suite)
	}
	if err := verifyAny(block, keys, now); err != nil {
		return nil, errs.Integrityf("InRelease of %s: %w", suite, err)
	}
	p, err := deb822.NewReader(bytes.NewReader(block.Plaintext), "InRelease of "+suite,
		"suite", "codename", "date", "valid-until", "acquire-by-hash", "sha256").Next()
	if err != nil {
		return nil, errs.Integrityf("%w", err)
	}
	idx := &releaseIndex{suite: p.Fields["suite"], codename: p.Fields["codename"],
		byHash: strings.EqualFold(p.Fields["acquire-by-hash"], "yes"), files: map[string]indexSum{}}
	// Ubuntu gives every pocket of a release the release's Codename
	// (noble-security, -updates, -proposed: "Codename: noble"), so a
	// Codename naming the suite asked for is not enough when the Suite
	// names one of its pockets: that is another suite's file.
	if idx.suite != suite && (idx.codename != suite || strings.HasPrefix(idx.suite, suite+"-")) {
		return nil, errs.Integrityf("InRelease of %s is that of suite %q (codename %q): a signed file of another suite", suite, idx.suite, idx.codename)
	}
	idx.dateText = p.Fields["date"]
	idx.date, _ = parseReleaseDate(idx.dateText)
	if v, ok := p.Fields["valid-until"]; ok {
		until, err := parseReleaseDate(v)
		if err != nil {
			return nil, errs.Integrityf("InRelease of %s: Valid-Until %q: %w", suite, v, err)
		}
		if now.After(until) {
			return nil, errs.Integrityf("InRelease of %s expired at %s (Valid-Until): an old copy of the archive", suite, until.UTC().Format(time.RFC1123))
		}
		idx.validUntil = until
	}
	lines := p.Continued["sha256"]
	if len(lines) > maxReleaseFiles {
		return nil, errs.Integrityf("InRelease of %s lists %d files, over %d", suite, len(lines), maxReleaseFiles)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || len(f[0]) != 64 || strings.Trim(f[0], "0123456789abcdef") != "" {
			return nil, errs.Integrityf("InRelease of %s: SHA256 line %q is not \"HASH SIZE PATH\"", suite, l)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return nil, errs.Integrityf("InRelease of %s: SHA256 line %q: bad size", suite, l)
		}
		idx.files[f[2]] = indexSum{sha256: f[0], size: size}
	}
	return idx, nil
}

// DefaultAptMaxAge is how old an InRelease of a security or updates
// suite may be where it states no Valid-Until (no Ubuntu suite does):
// these are published many times a week, and an older one is a replay of
// an old signed file that hides what came since.
const DefaultAptMaxAge = 7 * 24 * time.Hour

// fresh checks that the file was published at most maxAge before now, as
// apt's Acquire::Max-ValidTime does (off in apt by default): the bound on
// a replayed InRelease where it has no Valid-Until. It is an integrity
// error when the file is older or its Date cannot be read.
func (idx *releaseIndex) fresh(name string, maxAge time.Duration, now time.Time) error {
	if idx.date.IsZero() {
		if idx.dateText != "" {
			return errs.Integrityf("InRelease of %s: its Date %q is not a date to tell its age by", name, idx.dateText)
		}
		return errs.Integrityf("InRelease of %s has no Date to tell its age by", name)
	}
	if age := now.Sub(idx.date); age > maxAge {
		return errs.Integrityf("InRelease of %s is dated %s, %s old, more than %s: an old copy of the archive (--apt-max-age), "+
			"or a release this archive no longer updates (past its standard support: raise --apt-max-age, 0 for no bound)",
			name, idx.date.UTC().Format(time.RFC1123), age.Round(time.Hour), maxAge)
	}
	return nil
}

// verifyAny checks block's signatures against each key in turn: the
// OpenPGP library stops at the first signature by a key it holds, so an
// expired key listed first would hide a good signature by another.
func verifyAny(block *clearsign.Block, keys openpgp.EntityList, now time.Time) error {
	if len(keys) == 0 {
		return errors.New("no apt keyring to check its signature with")
	}
	// The signature is a reader that a check consumes: read it once.
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	var firstErr error
	for _, k := range keys {
		s, _, err := openpgp.VerifyDetachedSignature(openpgp.EntityList{k}, bytes.NewReader(block.Bytes), bytes.NewReader(sig), configAt(now.Add(clockSlack)))
		if err == nil && weakDigest[s.Hash] {
			// apt (gpgv's --weak-digest, sqv's policy) refuses these; the
			// v1 OpenPGP API does not check Config's RejectMessageHashAlgorithms.
			err = fmt.Errorf("signed with the weak digest %v", s.Hash)
		}
		if err == nil && s.IssuerKeyId != nil {
			for _, key := range (openpgp.EntityList{k}).KeysById(*s.IssuerKeyId) {
				if werr := weakKey(key.PublicKey); werr != nil {
					err = werr
				}
			}
		}
		if err == nil {
			return nil
		}
		if firstErr == nil && !errors.Is(err, pgperrors.ErrUnknownIssuer) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return fmt.Errorf("signature: %w", firstErr)
	}
	return fmt.Errorf("not signed by any of the %d keys apt trusts", len(keys))
}

// weakKey says why a signature by pk is refused, or nil: as apt's
// Sequoia policy (apt 3, trixie: /usr/share/apt/default-sequoia.config
// rejects DSA of any size since 2024-02-01, and Sequoia's standard policy
// RSA under 2048 bits), which the v1 OpenPGP API does not check.
func weakKey(pk *packet.PublicKey) error {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoDSA:
		return errors.New("signed by a DSA key, which apt no longer accepts")
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
		if bits, err := pk.BitLength(); err != nil || bits < 2048 {
			return fmt.Errorf("signed by an RSA key of %d bits, under the 2048 apt accepts", bits)
		}
	}
	return nil
}

// weakDigest are the digests a signature of an InRelease must not use.
var weakDigest = map[crypto.Hash]bool{crypto.MD5: true, crypto.SHA1: true, crypto.RIPEMD160: true}

// configAt is the OpenPGP configuration that checks keys' and
// signatures' expiry at now.
func configAt(now time.Time) *packet.Config {
	return &packet.Config{Time: func() time.Time { return now }}
}

// clockSlack is how far ahead of this machine's clock a signature may be
// dated: an InRelease signed a moment ago on a server whose clock is a few
// seconds ahead is not one from the future.
const clockSlack = 10 * time.Second

// parseReleaseDate reads a Release file's date ("Fri, 11 Dec 2026
// 03:54:29 UTC", RFC 1123 as apt writes it, or with a numeric zone).
// Launchpad pads an hour below 10 with a space ("Fri, 04 Dec 2026
// 3:56:10 UTC" with two spaces): time.Parse takes a run of spaces for
// one, and one digit for the hour.
func parseReleaseDate(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not an RFC 1123 date")
}
