package sign

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/attachments"
	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
)

const simpleSigningType = "cosign container image signature"

// ArtifactTypeSignature is the artifact type of the signature manifests
// cosign writes as OCI 1.1 referrers (sign --registry-referrers-mode=oci-1-1).
const ArtifactTypeSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"

// maxSignatureLayers bounds the signatures read in one signature manifest.
const maxSignatureLayers = 64

// Result says what Sign or Attest did on one repository.
type Result struct {
	// Ref is repo@digest, the image signed.
	Ref string `json:"ref"`
	// Digest is the digest signed.
	Digest string `json:"digest"`
	// Attachment is the repo:sha256-<hex>.sig (or .att) written.
	Attachment string `json:"attachment"`
	// Added is false when an equivalent signature by the same key was
	// already there, and nothing was written.
	Added bool `json:"added"`
	// Layers is how many signatures (or attestations) the attachment
	// holds now.
	Layers int `json:"layers"`
}

// simpleSigning is cosign's signature payload ("simple signing"), with the
// fields in cosign's order.
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// Claims are annotations a signature carries in its signed payload (the
// "optional" section, as cosign sign -a KEY=VALUE writes them).
// VerifyClaims counts only the signatures that carry every one of them
// (as cosign verify -a KEY=VALUE), so that a signature made for one use of
// a digest is not taken for another (a cache entry signed under one key,
// tagged under another).
type Claims map[string]string

func newPayload(repo reference.Named, d digest.Digest, claims Claims) ([]byte, error) {
	var p simpleSigning
	if len(claims) > 0 {
		p.Optional = make(map[string]any, len(claims))
		for k, v := range claims {
			p.Optional[k] = v
		}
	}
	// The repository without tag, as cosign records it; verifiers (cosign,
	// and this package) check the digest, not this name, so that a
	// signature copied to a mirror still verifies there.
	p.Critical.Identity.DockerReference = reference.TrimNamed(repo).String()
	p.Critical.Image.DockerManifestDigest = d.String()
	p.Critical.Type = simpleSigningType
	return json.Marshal(p)
}

// Sign signs the manifest repo@digest on its registry with s, in cosign's
// format: a layer added to the repository's sha256-<hex>.sig manifest
// (created when missing). The manifest the registry serves is read first
// and must hash to the digest named (else an *errs.IntegrityError);
// exactly that digest is signed, whether it is an image or an index (the
// children of an index are not signed: verifiers check the digest they
// were given, the index's).
//
// Signing again is harmless: when the .sig manifest already holds a
// signature of this digest that verifies with s's key, nothing is written
// (Result.Added is false). Signatures by other keys are kept. The
// signature is read back from the registry and verified there before Sign
// returns: two concurrent Sign calls on one digest (a registry has no
// compare-and-swap on tags) both succeed when the second appended to the
// first's, and the one whose layer the other overwrote fails, rather than
// being reported signed.
func Sign(ctx context.Context, ref reference.Canonical, s Signer, opts Options) (*Result, error) {
	return SignClaims(ctx, ref, s, nil, opts)
}

// SignClaims is Sign with claims in the signed payload. A signature by
// the same key with other claims is another signature: it is kept, and
// this one added (Sign, without claims, is content with any of them).
func SignClaims(ctx context.Context, ref reference.Canonical, s Signer, claims Claims, opts Options) (*Result, error) {
	d := ref.Digest()
	return addLayer(ctx, ref, opts, layerKind{
		suffix: attachments.SuffixSignature, verb: "sign", mediaType: attachments.MediaTypeSimpleSigning,
		max: maxSignatureLayers, already: "is already signed with this key", done: "signed",
		ours: func(a *attachments.Attachment, l imgspecv1.Descriptor) error {
			_, err := checkSignatureLayer(ctx, a, l, s.Verifier(), d, claims)
			return err
		},
		layer: func() ([]byte, map[string]string, error) {
			payload, err := newPayload(ref, d, claims)
			if err != nil {
				return nil, nil, err
			}
			sig, err := s.SignMessage(ctx, payload)
			if err != nil {
				return nil, nil, err
			}
			return payload, map[string]string{attachments.AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}, nil
		},
	})
}

// layerKind is what Sign and Attest add: a layer of one media type in the
// attachment tagged sha256-<hex><suffix>.
type layerKind struct {
	suffix, verb, mediaType string
	// max bounds the existing layers read to find ours.
	max int
	// ours returns nil for a layer that is the one this call would add
	// (verified with the signer's key, of this digest and content).
	ours func(*attachments.Attachment, imgspecv1.Descriptor) error
	// layer makes the new layer's body and annotations.
	layer func() ([]byte, map[string]string, error)
	// already and done end the log lines; fields are logged with them.
	already, done string
	fields        map[string]any
}

// addLayer adds k's layer to ref's attachment unless one of the newest
// k.max layers already is ours, then reads the attachment back from the
// registry and finds it there. Signed means there, read back and verified:
// a registry that acknowledged the layer and lost it must not see the
// image tagged as signed.
func addLayer(ctx context.Context, ref reference.Canonical, opts Options, k layerKind) (*Result, error) {
	d := ref.Digest()
	log := opts.Logger().WithField("digest", d.String()).WithFields(k.fields)
	tag, cur, err := openAttachment(ctx, ref, k.suffix, k.verb, opts)
	if err != nil && !errors.Is(err, attachments.ErrAbsent) {
		return nil, err
	}
	res := &Result{Ref: ref.String(), Digest: d.String(), Attachment: tag.String()}
	defer cur.Close()
	if cur != nil {
		seen := 0
		for _, l := range slices.Backward(cur.Manifest.Layers) {
			if l.MediaType != k.mediaType {
				continue
			}
			if seen++; seen > k.max {
				break // older ones are not read: at worst one more is added
			}
			if k.ours(cur, l) == nil {
				log.Infof("%s %s (%s)", ref.Name(), k.already, tag.Tag())
				res.Layers = len(cur.Manifest.Layers)
				return res, nil
			}
		}
	}
	body, annotations, err := k.layer()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", k.verb, ref, err)
	}
	n, err := attachments.Append(ctx, opts, tag, cur, k.mediaType, body, annotations)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", k.verb, ref, err)
	}
	if err := readBack(ctx, tag, k.mediaType, opts, k.ours); err != nil {
		return nil, fmt.Errorf("%s %s: %w", k.verb, ref, err)
	}
	res.Added, res.Layers = true, n
	log.Infof("%s %s (%s)", k.done, ref.Name(), tag.Tag())
	return res, nil
}

// Verification is what Verify found.
type Verification struct {
	// Ref is repo@digest, the image checked.
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Attachment is the repo:sha256-<hex>.sig (or .att) read.
	Attachment string `json:"attachment"`
	// Verified counts the signatures (attestations) that verify with the
	// key and name the digest; Total counts all of them.
	Verified int `json:"verified"`
	Total    int `json:"total"`
	// OtherKeys counts the attestations not by the key (VerifyAttestation:
	// another key's, or ones no key verifies), which were not judged.
	OtherKeys int `json:"otherKeys,omitempty"`
	// Predicate is the newest verified attestation's predicate
	// (VerifyAttestation); the others are checked and not kept.
	Predicate json.RawMessage `json:"-"`
	// NotRead counts the signatures (attestations) past the bound on what
	// one check reads, newest first: they were not read.
	NotRead int `json:"notRead,omitempty"`
}

// Verify checks that repo@digest carries, in its sha256-<hex>.sig
// attachment or among its OCI 1.1 referrers (cosign's OCI 1.1 mode: a
// manifest of artifact type ArtifactTypeSignature whose subject is the
// image, found through the referrers API or the tag schema), at least one
// cosign signature that verifies with v and whose payload names exactly
// that digest. The image manifest itself is read
// first and must hash to the digest. No signature, no signature by this
// key, or only signatures of another digest: an *errs.IntegrityError
// (errors.Is(err, errs.ErrIntegrity)), naming the reason. The payload's
// docker-reference is not checked (as cosign does not), so a signature
// copied to a mirror verifies there.
func Verify(ctx context.Context, ref reference.Canonical, v Verifier, opts Options) (*Verification, error) {
	return VerifyClaims(ctx, ref, v, nil, opts)
}

// VerifyClaims is Verify counting only the signatures whose payload
// carries every one of claims.
func VerifyClaims(ctx context.Context, ref reference.Canonical, v Verifier, claims Claims, opts Options) (*Verification, error) {
	d := ref.Digest()
	sigRef, cur, err := openAttachment(ctx, ref, attachments.SuffixSignature, "verify signature of", opts)
	if sigRef == nil || cur == nil && !errors.Is(err, attachments.ErrAbsent) {
		return nil, err
	}
	res := &Verification{Ref: ref.String(), Digest: d.String(), Attachment: sigRef.String()}
	var problems []string
	var other digest.Digest
	var unread unreadable
	check := func(a *attachments.Attachment) {
		layers := 0
		// Newest first: cosign appends, so a fresh signature on a crowded
		// attachment is within the cap.
		for _, l := range slices.Backward(a.Manifest.Layers) {
			if l.MediaType != attachments.MediaTypeSimpleSigning {
				continue
			}
			if layers++; layers > maxSignatureLayers {
				res.NotRead++
				continue
			}
			res.Total++
			signed, err := checkSignatureLayer(ctx, a, l, v, d, claims)
			switch {
			case err == nil:
				if res.Verified == 0 {
					res.Attachment = a.Ref.String()
				}
				res.Verified++
			case errors.Is(err, errWrongDigest):
				other = signed
				problems = append(problems, fmt.Sprintf("signature %d: signs %s", res.Total, signed))
			case unread.add(err):
			default:
				problems = append(problems, fmt.Sprintf("signature %d: %v", res.Total, err))
			}
		}
	}
	if cur != nil {
		defer cur.Close()
		check(cur)
		if res.NotRead > 0 {
			opts.Logger().Warnf("%s: more than %d signatures: the newest %d were read, the other %d not", cur.Ref, maxSignatureLayers, maxSignatureLayers, res.NotRead)
			problems = append(problems, fmt.Sprintf("%s: more than %d signatures, %d older ones not read", cur.Ref, maxSignatureLayers, res.NotRead))
		}
		if res.Verified > 0 {
			return res, nil
		}
	}
	// cosign's OCI 1.1 mode keeps signatures as referrers instead.
	referrers := 0
	lookup := attachments.EachReferrer(ctx, ref, ArtifactTypeSignature, opts, func(a *attachments.Attachment) bool {
		referrers++
		check(a)
		return res.Verified == 0
	})
	var verdict error
	switch {
	case res.Verified > 0:
		return res, nil
	case unread.n > 0:
		// One that could not be read may be the good one: no verdict.
		return res, unread.err(ref.String(), "signed with the key", res.Total)
	case cur == nil && referrers == 0:
		verdict = &MissingError{Ref: ref.String(), Tag: sigRef.Tag(), What: "signed"}
	case res.Total == 0:
		verdict = &errs.IntegrityError{What: ref.String(), Check: "signature: no cosign signature in " + res.Attachment + " or among the referrers"}
	case other != "" && len(problems) == 1:
		verdict = &errs.IntegrityError{What: "signature of " + ref.String(), Check: "signed digest", Expected: d.String(), Actual: other.String()}
	default:
		verdict = &errs.IntegrityError{What: ref.String(), Check: fmt.Sprintf("signature: none of %d verifies with the key for this digest (%s)", res.Total, strings.Join(problems, "; "))}
	}
	if lookup != nil {
		// What was found stays the verdict (exit 3 for an unsigned image);
		// the referrers that could not be read are said too.
		if errors.Is(lookup, errs.ErrIntegrity) {
			return res, errors.Join(lookup, verdict)
		}
		return res, errors.Join(verdict, fmt.Errorf("the referrers of %s could not be read: %w", ref, lookup))
	}
	return res, verdict
}

// unreadable collects the signatures (attestations) that are there but
// whose blob could not be read, the registry failing past the retries:
// their check could not be made, which is no verdict on them.
type unreadable struct {
	n     int
	first error
}

// add records err when it is such a failure (not content that arrived and
// does not match) and says whether it was.
func (u *unreadable) add(err error) bool {
	var rb *readError
	if !errors.As(err, &rb) {
		return false
	}
	if u.n++; u.first == nil {
		u.first = rb.err
	}
	return true
}

// err says that whether ref is what (e.g. "signed with the key") could
// not be told: a runtime error, not an integrity failure.
func (u *unreadable) err(ref, what string, total int) error {
	return fmt.Errorf("could not tell whether %s is %s: %d of %d could not be read from the registry: %w", ref, what, u.n, total, u.first)
}

// readError is a blob that could not be read at all (as opposed to read
// and found wrong).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readBlob reads one blob of a, marking a failure to read it (not an
// integrity failure of what was read) as a readError.
func readBlob(ctx context.Context, a *attachments.Attachment, l imgspecv1.Descriptor) ([]byte, error) {
	data, err := a.Blob(ctx, l)
	if err != nil && !errors.Is(err, errs.ErrIntegrity) {
		return nil, &readError{err: err}
	}
	return data, err
}

// readBack reads the attachment at tag again from the registry and
// checks that one of its layers of mediaType passes check (the signature
// or attestation just written); otherwise it says the registry does not
// serve it.
func readBack(ctx context.Context, tag reference.Named, mediaType string, opts Options, check func(*attachments.Attachment, imgspecv1.Descriptor) error) error {
	a, err := attachments.Read(ctx, opts.Uncached(), tag)
	if err != nil {
		return fmt.Errorf("read back %s: the registry does not serve what it accepted: %w", tag, err)
	}
	defer a.Close()
	var last error
	for _, l := range slices.Backward(a.Manifest.Layers) {
		if l.MediaType != mediaType {
			continue
		}
		if last = check(a, l); last == nil {
			return nil
		}
	}
	if last == nil {
		last = errors.New("no such layer")
	}
	return fmt.Errorf("read back %s: the registry does not serve what it accepted: %w", tag, last)
}

// errWrongDigest is a valid signature of another digest.
var errWrongDigest = errors.New("signs another digest")

// checkSignatureLayer checks one signature layer: its payload blob, its
// signature with v, and that the payload names want and carries claims. For a valid
// signature of another digest it returns that digest and errWrongDigest.
func checkSignatureLayer(ctx context.Context, a *attachments.Attachment, l imgspecv1.Descriptor, v Verifier, want digest.Digest, claims Claims) (digest.Digest, error) {
	b64, ok := l.Annotations[attachments.AnnotationSignature]
	if !ok || b64 == "" {
		return "", errors.New("no signature annotation")
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("signature annotation: %w", err)
	}
	payload, err := readBlob(ctx, a, l)
	if err != nil {
		return "", err
	}
	if err := v.VerifyMessage(payload, sig); err != nil {
		return "", err
	}
	var p simpleSigning
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	if p.Critical.Type != simpleSigningType {
		return "", fmt.Errorf("payload type %q, want %q", p.Critical.Type, simpleSigningType)
	}
	got := digest.Digest(p.Critical.Image.DockerManifestDigest)
	if got != want {
		return got, errWrongDigest
	}
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		if v, ok := p.Optional[k].(string); !ok || v != claims[k] {
			return got, fmt.Errorf("signed with %s %q, not %q", k, v, claims[k])
		}
	}
	return got, nil
}

// MissingError is an attachment that is not on the registry: the image is
// not signed (or has no attestation). errors.Is(err, errs.ErrIntegrity)
// holds for it: an unsigned image fails verification like a bad signature.
type MissingError struct {
	// Ref is repo@digest; Tag the attachment tag looked for; What says
	// what the image is not ("signed", "attested").
	Ref, Tag, What string
}

func (e *MissingError) Error() string {
	if e.Tag == "" {
		return fmt.Sprintf("integrity check failed: %s: not %s", e.Ref, e.What)
	}
	return fmt.Sprintf("integrity check failed: %s: not %s (no %s on the registry)", e.Ref, e.What, e.Tag)
}

// Is makes errors.Is(err, errs.ErrIntegrity) true.
func (e *MissingError) Is(target error) bool { return target == errs.ErrIntegrity }

// IsMissing reports whether err says that a signature or attestation is
// not there at all (as opposed to there and invalid).
func IsMissing(err error) bool {
	var m *MissingError
	return errors.As(err, &m)
}

// openAttachment is how Sign, Verify, Attest and VerifyAttestation start:
// check opts, read the image manifest at ref (it must hash to ref's
// digest: a registry serving other bytes is never signed or trusted), then
// read the attachment with suffix. cur is nil, with attachments.ErrAbsent, when the
// registry has none; verb names the operation in errors.
func openAttachment(ctx context.Context, ref reference.Canonical, suffix, verb string, opts Options) (reference.NamedTagged, *attachments.Attachment, error) {
	if err := opts.Check(); err != nil {
		return nil, nil, err
	}
	attRef, err := attachments.TagRef(ref, ref.Digest(), suffix)
	if err != nil {
		return nil, nil, err
	}
	if _, err := attachments.ImageManifest(ctx, opts, ref); err != nil {
		return attRef, nil, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	cur, err := attachments.Read(ctx, opts, attRef)
	if err != nil && !errors.Is(err, attachments.ErrAbsent) {
		return attRef, nil, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	return attRef, cur, err
}
