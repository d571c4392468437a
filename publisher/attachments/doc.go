// Package attachments is where cosign's attachments and OCI 1.1 referrers
// live on a registry, and how they travel between registries:
//
//   - cosign's tags: a signature of the manifest sha256:H under
//     sha256-H.sig, an attestation under sha256-H.att, an older SBOM under
//     sha256-H.sbom (OCI image manifests whose layers are the payloads);
//   - OCI 1.1 referrers (manifests whose subject is the image): under the
//     referrers tag schema's sha256-H index, or behind a registry's
//     referrers API (GET /v2/<name>/referrers/<digest>).
//
// It reads and writes them (Read, NewWriter, Append, EachReferrer) for
// package sign, which makes and checks what is in them, and copies them
// byte for byte with an image (Copier), checking each against its digest,
// size and subject. It signs nothing and pushes no image.
//
// Registries are reached through remote.Client, one per repository (its
// connections and token serve every read and write there), configured by
// remote.Hosts (credentials, CA, insecure hosts, retries); only
// ImageManifest reads through c/image's docker transport.
package attachments
