package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/release"

	"github.com/spf13/cobra"
	"go.podman.io/storage"
)

func (a *app) releaseCommand() *cobra.Command {
	var path, sbomFile string
	var sf signFlags
	cmd := &cobra.Command{
		Use:   "release --config FILE",
		Short: "Build, verify, publish to every registry, verify there, register in Jenkins",
		Long: `Release runs the whole chain from a release file: build the definition
(in-process buildah), verify it locally, run the smoke commands in it, publish
the same bytes to every destination and verify each, then register the Jenkins
pod template pinned to image@sha256 on the chosen destination. Jenkins is only
told about an image every destination serves with the expected digest. With
--sign-key, the published digest is signed on every destination (cosign
format) and the build's SBOM attached as a signed SPDX attestation (a
multi-platform build: each platform image with its own, then the index),
within the publish stage: after verification and before any tag is written,
so before Jenkins is told. A second
run with nothing changed builds from cache, sends no blob and reports the
template "unchanged". The release file's cache block (from, to, verifyKey:
build's --cache-from, --cache-to and --cache-verify-key) shares build steps
through a registry; --sign-key signs its entries too.`,
		Example: `  JENKINS_API_TOKEN=… agentforge release --config release.yaml -o json`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := release.LoadFile(path)
			if err != nil {
				return err
			}
			// Loaded before anything is built: a wrong passphrase costs nothing.
			signer, err := sf.signer()
			if err != nil {
				return err
			}
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			env, err := a.releaseEnv(store, file, defaultCacheDir())
			if err != nil {
				return err
			}
			env.Signer, env.SBOMFile = signer, sbomFile
			cfg, err := file.Config(env)
			if err != nil {
				return err
			}
			rep, err := release.Run(cmd.Context(), cfg)
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printRelease(w, rep) })
			}
			return err
		},
	}
	cmd.Flags().StringVar(&path, "config", "release.yaml", "release file")
	cmd.Flags().StringVar(&sbomFile, "sbom", "", "write the image's SPDX 2.3 JSON SBOM to this file (a list: one per platform)")
	sf.AddFlags(cmd)
	return cmd
}

// releaseEnv is what a release file's run needs from this invocation:
// storage, the registry hosts with the file's mirrors, the caches under
// cacheDir, the Jenkins token, logs and build output.
func (a *app) releaseEnv(store storage.Store, file *release.File, cacheDir string) (release.Env, error) {
	env := release.Env{Store: store, CacheDir: cacheDir, WorkDir: filepath.Join(cacheDir, "publish"), Secrets: a.secrets, Log: a.log, Output: a.stderr, Progress: a.progress}
	var err error
	if env.SourceDateEpoch, err = sourceDateEpoch(""); err != nil {
		return env, err
	}
	if env.Hosts, err = a.hosts(file.RegistryMirrors, remote.RetryPolicy{}); err != nil {
		return env, err
	}
	// Only writing a JCasC file contacts no Jenkins, and needs no token.
	if j := file.Jenkins; j != nil && (j.CascFile == "" || j.CascReload) {
		env.JenkinsToken, err = readToken(j.TokenFile)
	}
	return env, err
}

func printRelease(w io.Writer, r *release.Report) {
	for _, s := range r.Stages {
		fmt.Fprintf(w, "%-8s %-6s %6.1fs\n", s.Name, s.Status, s.Seconds)
	}
	if r.Image != nil {
		fmt.Fprintf(w, "image    %s (%s)\n", strings.Join(r.Image.Names, ", "), r.Image.Digest)
		if c := r.Image.Cache; c != nil && c.Off == "" {
			fmt.Fprintf(w, "cache    %d of %d steps from the cache, %d built, %d pushed\n", c.Hits, len(c.Steps), c.Built, c.Pushed)
		}
	}
	for _, d := range r.Destinations {
		fmt.Fprintf(w, "pushed   %s verified=%t (%d blobs sent, %d already there)\n", d.Ref, d.Verified, d.BlobsPushed, d.BlobsSkipped)
	}
	for _, sg := range r.Signatures {
		if sg.Error != "" {
			fmt.Fprintf(w, "%s\n", sg)
			continue
		}
		fmt.Fprintf(w, "signed   %s (%s)\n", sg.Ref, sg.What())
	}
	for _, p := range r.SBOM {
		fmt.Fprintf(w, "sbom     %s\n", p)
	}
	if r.Jenkins != nil && r.Jenkins.Template != nil {
		fmt.Fprintf(w, "jenkins  %s: pod template %q -> %s\n", r.Jenkins.Status, r.Jenkins.Template.Name, r.Jenkins.Template.Image)
	}
}
