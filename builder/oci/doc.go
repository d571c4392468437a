// Package oci holds what an image is, wherever it is: references for every
// transport (local containers-storage, docker://, oci:), platforms,
// manifests and local manifest lists, and reading back and verifying an
// image or index (manifest digest, config, every layer's digest, size and
// diffID). How a registry is reached (credentials, TLS, retries, the HTTP
// client for what c/image does not offer) is package remote's.
//
// It lives under builder because builder is the lower of the two layers
// that use it: publisher imports builder/oci, never builder itself, so a
// Go program that only publishes does not pull in buildah. The package
// imports neither builder nor publisher nor buildah; depcheck_test.go in
// publisher enforces the graph.
package oci
