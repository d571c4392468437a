// Package image holds the image primitives that building and publishing
// share: parsing references for every transport (local containers-storage,
// docker://, oci:), reading and verifying an image or index wherever it is
// (manifest digest, config, every layer's digest, size and diffID), and the
// one registry configuration (auth file, CA, insecure hosts, mirrors,
// retries) every registry access goes through.
//
// It lives under builder because builder is the lower of the two layers
// that use it: publisher imports builder/image, never builder itself, so a
// Go program that only publishes does not pull in buildah. The package
// imports neither builder nor publisher nor buildah; depcheck_test.go in
// publisher enforces the graph.
package image
