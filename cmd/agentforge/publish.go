package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/publisher"
	"github.com/spf13/cobra"
)

func (a *app) publishCommand() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "publish REF --to DEST [--to DEST]...",
		Short: "Push a local image to every destination (same bytes, same digest), then verify each",
		Long: `Publish pushes a local image (containers-storage, or oci:DIR[:tag]) to every
destination at once. A local image is compressed once into a staging OCI layout
(kept for the next run), so every registry receives the same bytes and serves
the same manifest digest. Per destination: blobs (those present are skipped),
the manifest by digest, verification, the signature (--sign-key, with the
--sbom attestation), and only then the tags: an image that fails a check, or
whose signing fails, is never tagged, and a tag never names an unsigned image. A tag that already points to another digest is
not moved unless --allow-overwrite; it is looked up again right before it is
written, so a concurrent publish that took it meanwhile is reported as a
conflict. An oci: layout with uncompressed layers is compressed once like a
local image (--keep-digest pushes it as it is). A destination that fails does not stop the others; the
exit code is 1 (3 for an integrity failure) and the message names it.

Tags: destinations without a tag get --tag, or else the local image's tags
(the definition's tag templates: 0.6.0-rc0, 0.6.0-rc0-python3.11.9).

A local manifest list (build --platform with several platforms) is published
whole: each platform's image as above, untagged, then one OCI index joining
them, verified with every platform's image, signed (each platform's image,
then the index), then tagged. Every destination serves the same index digest.`,
		Example: `  agentforge publish localhost/python-agent:0.6.0-rc0 \
      --to registry.example/agents/python-agent --to mirror.example.cn/registry.example/agents/python-agent
  agentforge publish python-agent:0.6.0-rc0 --to 127.0.0.1:5000/agents/python-agent --insecure-registry 127.0.0.1:5000 -o json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			opts, err := f.options(a)
			if err != nil {
				return err
			}
			var rep *publisher.IndexReport
			if oci.IsLocal(argv[0]) {
				store, err := a.openStore()
				if err != nil {
					return err
				}
				defer a.closeStore(store)
				dests, err := f.destinations(oci.LocalTags(store, argv[0]))
				if err != nil {
					return err
				}
				rep, err = publisher.PublishLocal(cmd.Context(), store, argv[0], dests, opts)
				a.emitIndex(rep)
				return err
			}
			src, err := oci.ParseReference(argv[0], nil)
			if err != nil {
				return err
			}
			dests, err := f.destinations(oci.LayoutTags(argv[0]))
			if err != nil {
				return err
			}
			pr, err := publisher.Publish(cmd.Context(), src, dests, opts)
			if pr != nil {
				a.emit(pr, func(w io.Writer) { printPublish(w, pr) })
			}
			return err
		},
	}
	f.AddFlags(cmd)
	f.sign.AddFlags(cmd)
	f.sign.AddSBOMFlag(cmd)
	cmd.Flags().BoolVar(&f.keepDigest, "keep-digest", false, "push an oci: layout as it is, keeping its digest (by default uncompressed layers are gzip-compressed once, which changes the digest)")
	return cmd
}

func printPublish(w io.Writer, r *publisher.Report) {
	fmt.Fprintf(w, "digest %s\n", r.Digest)
	for _, d := range r.Destinations {
		status := "ok"
		if d.Error != "" {
			status = "FAILED: " + d.Error
		} else if d.Verification == "dry-run" {
			status = "dry run"
		}
		fmt.Fprintf(w, "  %s tags=%s verified=%t(%s) pushed=%d blobs/%d bytes skipped=%d %.1fs %s\n",
			d.Ref, strings.Join(d.Tags, ","), d.Verified, d.Verification, d.BlobsPushed, d.BytesPushed, d.BlobsSkipped, d.Seconds, status)
		if at := d.Attachments; at != nil {
			fmt.Fprintf(w, "    signatures/attestations: %d copied, %d already there\n", len(at.Copied), at.Unchanged)
		}
	}
	for _, sg := range r.Signatures {
		fmt.Fprintf(w, "  %s\n", sg)
	}
}
