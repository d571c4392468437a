package sign_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/agentforge/agentforge/publisher/sign/signtest"
)

func TestAttest_VerifyAttestation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "pass")
	other, _, _ := keyPair(t, "other")
	ref := e.push(t, "attested", ocitest.Options{Layers: 1, Size: 256, Seed: 11})

	if _, err := sign.VerifyAttestation(ctx, ref, key.Public(), "spdxjson", e.opts); !errors.Is(err, errs.ErrIntegrity) || !sign.IsMissing(err) || !strings.Contains(err.Error(), "not attested (no sha256-") {
		t.Fatalf("before Attest: %v, want an integrity failure saying there is none", err)
	}
	steps := []struct {
		name      string
		predicate string
		wantAdded bool
		wantN     int
	}{
		{"first", signtest.SBOM, true, 1},
		{"same again (reformatted)", strings.ReplaceAll(signtest.SBOM, ": ", ":"), false, 1},
		{"regenerated", strings.Replace(signtest.SBOM, `"test"`, `"test2"`, 1), true, 2},
		// json.Marshal escapes & in the stored statement: still the same.
		{"with a package URL query", strings.Replace(signtest.SBOM, `"test"`, `"pkg:oci/x?arch=amd64&os=linux"`, 1), true, 3},
		{"that again", strings.Replace(signtest.SBOM, `"test"`, `"pkg:oci/x?arch=amd64&os=linux"`, 1), false, 3},
	}
	for _, s := range steps {
		res, err := sign.Attest(ctx, ref, key, "spdxjson", []byte(s.predicate), e.opts)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.Added != s.wantAdded || res.Layers != s.wantN {
			t.Fatalf("%s: %+v, want added=%v layers=%d", s.name, res, s.wantAdded, s.wantN)
		}
	}
	v, err := sign.VerifyAttestation(ctx, ref, key.Public(), sign.PredicateSPDX, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if v.Verified != 3 || !strings.Contains(string(v.Predicate), `"spdxVersion":"SPDX-2.3"`) || !strings.Contains(string(v.Predicate), `pkg:oci/x?arch=amd64\u0026os=linux`) {
		t.Errorf("VerifyAttestation: %+v", v)
	}
	for _, tc := range []struct {
		name  string
		run   func() error
		check func(error) bool
	}{
		{"another key", func() error {
			_, err := sign.VerifyAttestation(ctx, ref, other.Public(), "spdxjson", e.opts)
			return err
		}, func(err error) bool { return errors.Is(err, errs.ErrIntegrity) }},
		{"another predicate type", func() error {
			_, err := sign.VerifyAttestation(ctx, ref, key.Public(), "cyclonedx", e.opts)
			return err
		}, func(err error) bool { return errors.Is(err, errs.ErrIntegrity) }},
		{"predicate not JSON", func() error {
			_, err := sign.Attest(ctx, ref, key, "spdxjson", []byte("SPDXVersion: SPDX-2.3"), e.opts)
			return err
		}, func(err error) bool { return errors.Is(err, errs.ErrInput) }},
		{"unknown type name", func() error {
			_, err := sign.Attest(ctx, ref, key, "spdx-json", []byte(signtest.SBOM), e.opts)
			return err
		}, func(err error) bool { return errors.Is(err, errs.ErrInput) }},
	} {
		if err := tc.run(); err == nil || !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestVerifyAttestation_SubjectIsAnotherDigest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "pass")
	a := e.push(t, "subject", ocitest.Options{Layers: 1, Size: 256, Seed: 12})
	b := e.push(t, "subject", ocitest.Options{Layers: 1, Size: 256, Seed: 13})
	if _, err := sign.Attest(ctx, a, key, "spdxjson", []byte(signtest.SBOM), e.opts); err != nil {
		t.Fatal(err)
	}
	// a's attestation manifest, unchanged, under b's tag.
	copyTag(t, e.opts, a, b, attachments.SuffixAttestation)
	_, err := sign.VerifyAttestation(ctx, b, key.Public(), "spdxjson", e.opts)
	if !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "subject is "+a.Digest().String()) {
		t.Fatalf("got %v, want an integrity failure naming the other subject", err)
	}
}

// An .att holding only attestations of another kind (a provenance) means
// no SBOM is attached, not a bad one: verify --key without --require-sbom
// passes on it.
func TestVerifyAttestation_OtherKindsOnlyIsMissing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _, _ := keyPair(t, "pass")
	ref := e.push(t, "provenance", ocitest.Options{Layers: 1, Size: 256, Seed: 14})
	if _, err := sign.Attest(ctx, ref, key, "https://slsa.dev/provenance/v1", []byte(`{"buildDefinition":{}}`), e.opts); err != nil {
		t.Fatal(err)
	}
	_, err := sign.VerifyAttestation(ctx, ref, key.Public(), "spdxjson", e.opts)
	if !sign.IsMissing(err) || !errors.Is(err, errs.ErrIntegrity) || !strings.Contains(err.Error(), "holds other kinds only") {
		t.Fatalf("got %v, want a missing SPDX attestation", err)
	}
	if _, err := sign.VerifyAttestation(ctx, ref, key.Public(), "https://slsa.dev/provenance/v1", e.opts); err != nil {
		t.Fatalf("the provenance itself: %v", err)
	}
}
