// Package source fetches what a definition's build needs from outside:
// each source file into a content-addressed cache (sha256-named blobs),
// checked before use and again before every reuse — its pinned sha256, a
// published checksum, a detached OpenPGP signature by a key pinned by
// fingerprint — with URLs rewritten through mirrors. Fetched describes a
// checked file; builder places it in the build context and sbom lists it.
//
// It does not import buildah, so a program that only checks or bumps
// sources (agentforge python bump) needs no build machinery.
package source
