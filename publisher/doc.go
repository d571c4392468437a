// Package publisher pushes images to registries and mirrors, copies images
// between registries byte for byte, and verifies what every registry serves.
//
// Digests are the identity: a local image is compressed once into a staging
// OCI layout and the same bytes go to every destination, so all of them serve
// the same manifest digest; manifests are never re-encoded; tags are written
// only after the manifest (by digest) and every blob it names are in place
// and verified and, when signing (Options.Sign), signed; a tag that points
// elsewhere is not moved unless asked. The package never
// builds; it verifies with builder.Verify, which works on any image
// reference.
package publisher
