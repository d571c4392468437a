package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// pushFlags are shared by publish and mirror.
type pushFlags struct {
	to             []string
	tags           []string
	allowOverwrite bool
	keepDigest     bool
	verify         string
	retries        int
	workDir        string
}

func (f *pushFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.to, "to", nil, "destination host/repo[:tag] (repeatable; docker:// optional)")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag to write on destinations given without one (repeatable)")
	fl.BoolVar(&f.allowOverwrite, "allow-overwrite", false, "move a tag that already points to another digest")
	fl.StringVar(&f.verify, "verify", publisher.VerifyFull, "after pushing: full (download and check every blob), fast (manifest, config, HEAD each layer) or none")
	fl.IntVar(&f.retries, "retries", 4, "attempts per registry operation (network errors, 408/429/5xx)")
	fl.StringVar(&f.workDir, "work-dir", filepath.Join(defaultCacheDir(), "publish"), "staging layouts (reused between runs) and temporary files")
}

func (f *pushFlags) options(a *app) (publisher.Options, error) {
	hosts, err := a.hosts(nil, remote.RetryPolicy{Attempts: f.retries})
	if err != nil {
		return publisher.Options{}, err
	}
	return publisher.Options{Hosts: hosts, AllowOverwrite: f.allowOverwrite, KeepDigest: f.keepDigest, Verify: f.verify, WorkDir: f.workDir, Log: a.log}, nil
}

// destinations parses --to values; those without a tag get defaultTags.
func (f *pushFlags) destinations(defaultTags []string) ([]publisher.Destination, error) {
	if len(f.to) == 0 {
		return nil, errs.Inputf("no destination: give at least one --to host/repo[:tag]")
	}
	out, err := parseDestinations(f.to, defaultTags)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	return out, nil
}

// parseDestinations parses host/repo[:tag] values; those without a tag get
// defaultTags.
func parseDestinations(list, defaultTags []string) ([]publisher.Destination, error) {
	var out []publisher.Destination
	for _, s := range list {
		d, err := publisher.ParseDestination(s, defaultTags)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (a *app) publishCommand() *cobra.Command {
	var f pushFlags
	var sf signFlags
	var sbomFile string
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
			var store storage.Store
			if oci.IsLocal(argv[0]) {
				s, err := a.openStore()
				if err != nil {
					return err
				}
				defer a.closeStore(s)
				store = s
			}
			src, err := oci.ParseReference(argv[0], store)
			if err != nil {
				return err
			}
			tags := f.tags
			if len(tags) == 0 {
				tags = sourceTags(store, argv[0], src)
			}
			dests, err := f.destinations(tags)
			if err != nil {
				return err
			}
			// The key is loaded before anything is pushed: a wrong
			// passphrase changes nothing.
			signer, err := sf.signer()
			if err != nil {
				return err
			}
			attest, err := readSBOM(sbomFile, signer)
			if err != nil {
				return err
			}
			opts, err := f.options(a)
			if err != nil {
				return err
			}
			opts.Sign = signing(signer, attest)
			if store != nil {
				list, err := oci.ReadLocalList(store, strings.TrimPrefix(argv[0], "containers-storage:"))
				if err != nil {
					return err
				}
				if list != nil {
					if attest != nil {
						return errs.Inputf("--sbom: %s is a manifest list: attach each platform's SBOM to its own digest with agentforge sign", argv[0])
					}
					rep, err := publisher.PublishList(cmd.Context(), list, dests, opts)
					a.emitIndex(rep)
					return err
				}
			}
			rep, err := publisher.Publish(cmd.Context(), src, dests, opts)
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printPublish(w, rep) })
			}
			return err
		},
	}
	f.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&sbomFile, "sbom", "", "attach this SPDX JSON document (build --sbom) as a signed attestation (needs --sign-key)")
	cmd.Flags().BoolVar(&f.keepDigest, "keep-digest", false, "push an oci: layout as it is, keeping its digest (by default uncompressed layers are gzip-compressed once, which changes the digest)")
	return cmd
}

// sourceTags are the tags a local image carries (under any repository), or
// the tag of an oci: reference.
func sourceTags(store storage.Store, arg string, src types.ImageReference) []string {
	if store == nil {
		if _, tag, ok := strings.Cut(strings.TrimPrefix(arg, "oci:"), ":"); ok && tag != "" {
			return []string{tag}
		}
		return nil
	}
	img, err := oci.LocalImage(store, strings.TrimPrefix(arg, "containers-storage:"))
	if err != nil {
		return nil
	}
	var tags []string
	for _, n := range img.Names {
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			if t, ok := named.(reference.Tagged); ok && !slices.Contains(tags, t.Tag()) {
				tags = append(tags, t.Tag())
			}
		}
	}
	slices.Sort(tags)
	return tags
}

// readSBOM reads an SBOM to attest; it needs a signer.
func readSBOM(path string, signer sign.Signer) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	if signer == nil {
		return nil, errs.Inputf("--sbom is attached as a signed attestation: it needs --sign-key")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Inputf("--sbom: %w", err)
	}
	// Checked before anything is pushed or signed.
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || !strings.HasPrefix(doc.SPDXVersion, "SPDX-") {
		return nil, errs.Inputf("--sbom %s: not an SPDX JSON document (build --sbom writes one)", path)
	}
	return data, nil
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
		what := "signed"
		switch {
		case sg.Error != "":
			fmt.Fprintf(w, "  NOT signed %s: %s\n", sg.Ref, sg.Error)
			continue
		case sg.SBOM != nil:
			what = "signed, SBOM attested"
		}
		fmt.Fprintf(w, "  %s %s\n", what, sg.Ref)
	}
}
