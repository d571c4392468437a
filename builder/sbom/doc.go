// Package sbom writes an SPDX 2.3 JSON document of what is in a built
// image: the dpkg packages recorded in the image's dpkg database, the Python
// distributions installed under a site-packages folder (pip among them), the
// sources the build downloaded and checked (CPython's tarball, the remoting
// jar), the base image, and the image itself.
//
// It reads the image's layers in order through containers/image (from
// containers-storage, an OCI layout or a registry), applying OCI whiteouts,
// and never mounts or runs the image. The same image and input give a
// byte-identical document.
//
// The package takes its own small input types (Input, Source, Base) so that
// the builder and the command line can call it without an import cycle: it
// must not import builder or cmd.
package sbom
