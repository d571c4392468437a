// Package builder turns an image definition into an image in
// containers-storage with the buildah library, in-process, and checks images
// layer by layer.
//
// It owns source downloads (a content-addressed cache; every file checked by
// sha256, a published checksum or an OpenPGP signature before use), the build
// itself (chroot isolation, reproducible timestamps, layer cache), local
// verification of an image's manifest, config and layers, and running a
// command in a built image for smoke checks. It never pushes: that is the
// publisher's job.
package builder
