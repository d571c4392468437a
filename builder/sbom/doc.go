// Package sbom writes an SPDX 2.3 JSON document of what is in a built
// image: the dpkg packages recorded in the image's dpkg database
// (/var/lib/dpkg/status and status.d), the Python distributions installed
// under a site-packages folder (pip among them), the sources the build
// downloaded and checked (CPython's tarball with its OpenPGP key, the
// remoting jar with its SHA-1 and SHA-256), the base image, and the image
// itself as the package the document describes.
//
// It reads the image's layers in order through containers/image (from
// containers-storage, an OCI layout or a registry), applying OCI whiteouts
// and opaque folders, and never mounts or runs the image. What it holds in
// memory is capped (Input.MaxFileSize, Input.MaxTotalSize). The same image
// and input give a byte-identical document: packages sorted, the creation
// time taken from the image (never the clock), the namespace derived from
// the manifest digest.
//
// The package takes its own small input types (Input, Source, Base) so that
// the builder and the command line can call it without an import cycle: it
// must not import builder or cmd. A caller holding a builder.Result converts
// it field by field:
//
//	in := sbom.Input{Name: res.Name, Version: res.Version,
//		Base: sbom.Base{Ref: res.Base.Ref, Digest: res.Base.Digest}}
//	for _, f := range res.Sources {
//		in.Sources = append(in.Sources, sbom.Source{Name: f.Name, URL: f.URL,
//			From: f.From, Path: f.Path, SHA256: f.SHA256, Size: f.Size,
//			Checks: f.Checks, SignatureSkipped: f.SignatureSkipped})
//	}
//	ref, _ := istorage.Transport.NewStoreReference(store, nil, res.ID)
//	doc, err := sbom.Generate(ctx, ref, in)
//	...
//	err = sbom.Write(strings.TrimSuffix(report, ".json")+".spdx.json", doc)
package sbom
