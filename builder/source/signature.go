package source

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/fileedit"
	"github.com/agentforge/agentforge/images/httpget"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/agentforge/agentforge/images"
	"github.com/sirupsen/logrus"
)

// checkSignature verifies the detached OpenPGP signature of file against the
// key pinned by fingerprint. The key comes from the definition or, failing
// that, from the copy kept from an earlier run or the keyserver (whose
// copy decides when the kept one does not verify); only a key whose
// primary fingerprint is the pinned one is trusted.
func (f *Fetcher) checkSignature(ctx context.Context, file string, src images.Source, log logrus.FieldLogger) error {
	sig := src.Signature
	sigURL := remote.Rewrite(f.Mirrors, sig.URL)
	sigData, err := f.get(ctx, sigURL, 1<<20)
	if err != nil {
		return fmt.Errorf("signature %s: %w", httpget.RedactURL(sigURL), err)
	}
	key, cached, err := f.signingKey(ctx, sig, true, log)
	if err != nil {
		return err
	}
	signer, err := verifyDetached(file, sigData, key)
	if err != nil && cached {
		// A key kept from an earlier run may be out of date: the release
		// manager extended its expiry or added a signing subkey since. The
		// keyserver's copy of the same pinned key decides, with every
		// revocation the kept copy has (a copy without one, older or
		// stripped on the way, must not bring a revoked key back), and is
		// kept only when it verifies.
		log.Infof("signature %s does not verify with the cached key %s (%v): fetching the key again", httpget.RedactURL(sigURL), sig.Fingerprint, err)
		fresh, _, kerr := f.signingKey(ctx, sig, false, log)
		if kerr != nil {
			log.Warnf("fetching OpenPGP key %s again: %v", sig.Fingerprint, kerr)
		} else {
			keepRevocations(fresh, key)
			if signer, err = verifyDetached(file, sigData, fresh); err == nil {
				if werr := writeArmoredKey(filepath.Join(f.CacheDir, "keys", sig.Fingerprint+".asc"), fresh); werr != nil {
					log.Warnf("cannot cache key %s: %v", sig.Fingerprint, werr)
				}
			}
		}
	}
	if err != nil {
		return &errs.IntegrityError{What: fmt.Sprintf("signature %s", httpget.RedactURL(sigURL)), Check: "signature", Expected: "a valid signature by " + sig.Fingerprint, Actual: err.Error()}
	}
	if got := fingerprint(signer); got != sig.Fingerprint {
		return &errs.IntegrityError{What: fmt.Sprintf("signature %s", httpget.RedactURL(sigURL)), Check: "signer", Expected: sig.Fingerprint, Actual: got}
	}
	return nil
}

// verifyDetached checks sigData (armored or binary) as key's detached
// signature of the file and returns the signer.
func verifyDetached(file string, sigData []byte, key *openpgp.Entity) (*openpgp.Entity, error) {
	in, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if bytes.Contains(sigData, []byte("-----BEGIN PGP SIGNATURE-----")) {
		return openpgp.CheckArmoredDetachedSignature(openpgp.EntityList{key}, in, bytes.NewReader(sigData), nil)
	}
	return openpgp.CheckDetachedSignature(openpgp.EntityList{key}, in, bytes.NewReader(sigData), nil)
}

// signingKey returns the entity whose primary key has the pinned
// fingerprint: the definition's, else (with useCache) the one kept from
// an earlier run, else the keyserver's, which is then kept when useCache
// (without, the caller decides). cached says the key is the kept one.
func (f *Fetcher) signingKey(ctx context.Context, sig *images.Signature, useCache bool, log logrus.FieldLogger) (key *openpgp.Entity, cached bool, err error) {
	data, from := sig.Key, "the definition"
	keep := filepath.Join(f.CacheDir, "keys", sig.Fingerprint+".asc")
	if len(data) == 0 && useCache {
		if b, err := os.ReadFile(keep); err == nil {
			data, from, cached = b, keep, true
		}
	}
	if len(data) == 0 {
		base := f.KeyServer
		if base == "" {
			base = DefaultKeyServer
		}
		u := remote.Rewrite(f.Mirrors, strings.TrimSuffix(base, "/")+"/vks/v1/by-fingerprint/"+sig.Fingerprint)
		log.Infof("fetching OpenPGP key %s from %s", sig.Fingerprint, httpget.RedactURL(u))
		b, err := f.get(ctx, u, 1<<20)
		if err != nil {
			return nil, false, fmt.Errorf("OpenPGP key %s: %w", sig.Fingerprint, err)
		}
		data, from = b, httpget.RedactURL(u)
	}
	var keyring openpgp.EntityList
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		keyring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		keyring, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, false, fmt.Errorf("OpenPGP key %s from %s: %w", sig.Fingerprint, from, err)
	}
	var found []string
	for _, e := range keyring {
		fp := fingerprint(e)
		if fp == sig.Fingerprint {
			if !cached && useCache && len(sig.Key) == 0 {
				if err := writeArmoredKey(keep, e); err != nil {
					log.Warnf("cannot cache key %s: %v", fp, err)
				}
			}
			return e, cached, nil
		}
		found = append(found, fp)
	}
	return nil, false, &errs.IntegrityError{What: "OpenPGP key from " + from, Check: "fingerprint", Expected: sig.Fingerprint, Actual: strings.Join(found, ",")}
}

// keepRevocations adds to fresh, a keyserver's copy of the key kept, the
// revocations (of the key, a subkey or a user ID) that only kept has.
func keepRevocations(fresh, kept *openpgp.Entity) {
	fresh.Revocations = append(fresh.Revocations, missing(fresh.Revocations, kept.Revocations)...)
	for _, ks := range kept.Subkeys {
		for i := range fresh.Subkeys {
			if fs := &fresh.Subkeys[i]; bytes.Equal(fs.PublicKey.Fingerprint, ks.PublicKey.Fingerprint) {
				fs.Revocations = append(fs.Revocations, missing(fs.Revocations, ks.Revocations)...)
			}
		}
	}
	for name, kid := range kept.Identities {
		if fid, ok := fresh.Identities[name]; ok {
			add := missing(fid.Revocations, kid.Revocations)
			fid.Revocations = append(fid.Revocations, add...)
			fid.Signatures = append(fid.Signatures, add...) // what Serialize writes
		}
	}
}

// missing returns the signatures of from that have does not hold.
func missing(have, from []*packet.Signature) []*packet.Signature {
	seen := map[string]bool{}
	bytesOf := func(s *packet.Signature) string {
		var b bytes.Buffer
		s.Serialize(&b)
		return b.String()
	}
	for _, s := range have {
		seen[bytesOf(s)] = true
	}
	var out []*packet.Signature
	for _, s := range from {
		if k := bytesOf(s); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

func fingerprint(e *openpgp.Entity) string {
	if e == nil || e.PrimaryKey == nil {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

func writeArmoredKey(path string, e *openpgp.Entity) error {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return err
	}
	if err := e.Serialize(w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// A complete file renamed into place: a concurrent run reading the
	// kept key never reads half of one.
	return fileedit.Replace(path, buf.Bytes(), 0o644)
}
