package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/release"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher"
	"github.com/spf13/cobra"
	"go.podman.io/storage"
	"gopkg.in/yaml.v3"
)

// releaseFile is the release file (--config): what to build, where to
// publish it, and which Jenkins pod template to point at it.
type releaseFile struct {
	Definition      string            `yaml:"definition"`
	Set             map[string]string `yaml:"set"`
	SourceMirrors   []string          `yaml:"sourceMirrors"`
	RegistryMirrors []string          `yaml:"registryMirrors"`
	SkipSignature   []string          `yaml:"skipSignature"`
	Smoke           [][]string        `yaml:"smoke"`
	// Pod is a bash script run in the built image as a pod runs it (uid
	// 1000, privileged, an emptyDir at podman's storage): see
	// builder.RunAsPod.
	Pod string `yaml:"pod"`
	// Platforms to build for (os/arch), each one the definition declares;
	// default this machine's. Several make a manifest list (foreign ones
	// under qemu-user emulation); a fleet that builds each on its own agent
	// joins them with index instead. Platform is the one-platform form.
	Platforms      []string        `yaml:"platforms"`
	Platform       string          `yaml:"platform"`
	Destinations   []string        `yaml:"destinations"`
	Verify         string          `yaml:"verify"`
	AllowOverwrite bool            `yaml:"allowOverwrite"`
	Jenkins        *releaseJenkins `yaml:"jenkins"`
	// Cache is the registry layer cache (build --cache-from, --cache-to,
	// --cache-verify-key); release's --sign-key signs its entries.
	Cache *releaseCache `yaml:"cache"`
}

// releaseCache is the layer cache part of a release file.
type releaseCache struct {
	From      []string `yaml:"from"`
	To        string   `yaml:"to"`
	VerifyKey string   `yaml:"verifyKey"`
}

// platforms merges platform and platforms.
func (c *releaseFile) platforms() []string {
	if c.Platform != "" {
		return append([]string{c.Platform}, c.Platforms...)
	}
	return c.Platforms
}

// releaseJenkins is the Jenkins part of a release file. The token never
// goes in the file: $JENKINS_API_TOKEN or tokenFile.
type releaseJenkins struct {
	URL       string `yaml:"url"`
	User      string `yaml:"user"`
	TokenFile string `yaml:"tokenFile"`
	// Destination is the index in destinations whose reference Jenkins
	// pulls (default 0, the upstream).
	Destination    int    `yaml:"destination"`
	Cloud          string `yaml:"cloud"`
	Template       string `yaml:"template"`
	Label          string `yaml:"label"`
	Namespace      string `yaml:"namespace"`
	ServiceAccount string `yaml:"serviceAccount"`
	IdleMinutes    int    `yaml:"idleMinutes"`
	InstanceCap    *int   `yaml:"instanceCap"`
	CPURequest     string `yaml:"cpuRequest"`
	MemoryRequest  string `yaml:"memoryRequest"`
	CPULimit       string `yaml:"cpuLimit"`
	MemoryLimit    string `yaml:"memoryLimit"`
	NodeUsageMode  string `yaml:"nodeUsageMode"`
	Adopt          bool   `yaml:"adopt"`
	// Podman gives the pod what rootless podman in the agent needs (as
	// register --podman): a privileged agent container and an emptyDir at
	// PodmanStorage (default jenkins.PodmanStorage; "" for none).
	Podman        bool    `yaml:"podman"`
	PodmanStorage *string `yaml:"podmanStorage"`
}

func loadReleaseFile(path string) (*releaseFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Inputf("--config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c releaseFile
	if err := dec.Decode(&c); err != nil {
		return nil, errs.Inputf("%s: %w", path, err)
	}
	if len(c.Destinations) == 0 {
		return nil, errs.Inputf("%s: destinations: give at least one registry repository", path)
	}
	if c.Definition == "" {
		c.Definition = defaultDefinition
	}
	if j := c.Jenkins; j != nil && (j.Destination < 0 || j.Destination >= len(c.Destinations)) {
		return nil, errs.Inputf("%s: jenkins.destination %d: there are %d destinations", path, j.Destination, len(c.Destinations))
	}
	return &c, nil
}

func (a *app) releaseCommand() *cobra.Command {
	var file, sbomFile string
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
			cfg, err := loadReleaseFile(file)
			if err != nil {
				return err
			}
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			rc, err := a.releaseConfig(store, cfg, defaultCacheDir(), builder.DefaultKeyServer, filepath.Join(defaultCacheDir(), "publish"))
			if err != nil {
				return err
			}
			// Loaded before anything is built: a wrong passphrase costs nothing.
			if rc.Signer, err = sf.signer(); err != nil {
				return err
			}
			if c := rc.Build.Cache; c != nil && c.To != nil {
				c.Signer = rc.Signer
			}
			rc.SBOMFile = sbomFile
			rep, err := release.Run(cmd.Context(), rc)
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printRelease(w, rep) })
			}
			return err
		},
	}
	cmd.Flags().StringVar(&file, "config", "release.yaml", "release file")
	cmd.Flags().StringVar(&sbomFile, "sbom", "", "write the image's SPDX 2.3 JSON SBOM to this file (a list: one per platform)")
	sf.register(cmd)
	return cmd
}

// releaseConfig turns a release file into the typed release configuration:
// the definition loaded, mirrors and destinations parsed, the pod template
// checked. Bad input is found here, before anything is built.
func (a *app) releaseConfig(store storage.Store, cfg *releaseFile, cacheDir, keyServer, workDir string) (release.Config, error) {
	var rc release.Config
	srcMirrors, err := parseMirrors(cfg.SourceMirrors)
	if err != nil {
		return rc, fmt.Errorf("sourceMirrors: %w", err)
	}
	regMirrors, err := parseMirrors(cfg.RegistryMirrors)
	if err != nil {
		return rc, fmt.Errorf("registryMirrors: %w", err)
	}
	epoch, err := sourceDateEpoch("")
	if err != nil {
		return rc, err
	}
	if rc.Definition, err = loadDefinition(cfg.Definition, cfg.Set); err != nil {
		return rc, err
	}
	skip := map[string]bool{}
	for _, s := range cfg.SkipSignature {
		skip[s] = true
	}
	regs := a.registryConfig(regMirrors)
	rc.Build = builder.BuildOptions{
		Store:           store,
		Fetcher:         &builder.Fetcher{CacheDir: cacheDir, Mirrors: srcMirrors, KeyServer: keyServer, SkipSignature: skip, Log: a.log},
		Registries:      regs,
		SourceDateEpoch: epoch,
		Platforms:       cfg.platforms(),
		Output:          a.stderr,
		Log:             a.log,
	}
	if c := cfg.Cache; c != nil {
		if rc.Build.Cache, err = layerCache(c.From, c.To, c.VerifyKey, "cache.from", "cache.to", "cache.verifyKey"); err != nil {
			return rc, err
		}
	}
	rc.Smoke = cfg.Smoke
	if cfg.Pod != "" {
		rc.Pod = &release.PodCheck{Script: cfg.Pod, Options: builder.PodRunOptions{Privileged: true, EmptyDir: jenkins.PodmanStorage}}
		if !builder.UserNamespaces(context.Background()) {
			rc.Pod.Options.Env = append(rc.Pod.Options.Env, "AGENTFORGE_CHROOTED=1")
		}
	}
	if rc.Destinations, err = parseDestinations(cfg.Destinations, rc.Definition.Tags); err != nil {
		return rc, err
	}
	rc.Publish = publisher.Options{Registries: regs, Verify: or(cfg.Verify, publisher.VerifyFull), AllowOverwrite: cfg.AllowOverwrite, WorkDir: workDir, Log: a.log}
	rc.Log = a.log
	if j := cfg.Jenkins; j != nil {
		token, err := readToken(j.TokenFile)
		if err != nil {
			return rc, err
		}
		tmpl := jenkins.Template{Cloud: or(j.Cloud, "kubernetes"), Name: or(j.Template, rc.Definition.Name), Label: or(j.Label, "python"),
			Namespace: j.Namespace, ServiceAccount: j.ServiceAccount, IdleMinutes: j.IdleMinutes, InstanceCap: -1,
			CPURequest: j.CPURequest, MemoryRequest: j.MemoryRequest, CPULimit: j.CPULimit, MemoryLimit: j.MemoryLimit, NodeUsageMode: j.NodeUsageMode}
		if j.InstanceCap != nil {
			tmpl.InstanceCap = *j.InstanceCap
		}
		switch {
		case j.PodmanStorage != nil && !j.Podman:
			return rc, errs.Inputf("jenkins.podmanStorage goes with jenkins.podman")
		case j.Podman:
			tmpl.Privileged = true
			storage := jenkins.PodmanStorage
			if j.PodmanStorage != nil {
				storage = *j.PodmanStorage
			}
			if storage != "" {
				tmpl.EmptyDirs = []string{storage}
			}
		}
		rc.Jenkins = &release.Jenkins{
			Client:      jenkins.Config{URL: or(j.URL, os.Getenv("JENKINS_URL")), User: or(j.User, os.Getenv("JENKINS_USER")), Token: token, Log: a.log, Secrets: a.secrets},
			Template:    tmpl,
			Destination: j.Destination,
			Options:     jenkins.Options{Adopt: j.Adopt},
		}
	}
	return rc, rc.Check()
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
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
		what := "signed"
		switch {
		case sg.Error != "":
			fmt.Fprintf(w, "NOT signed %s: %s\n", sg.Ref, sg.Error)
			continue
		case sg.SBOM != nil:
			what = "signed, SBOM attested"
		}
		fmt.Fprintf(w, "signed   %s (%s)\n", sg.Ref, what)
	}
	for _, p := range r.SBOM {
		fmt.Fprintf(w, "sbom     %s\n", p)
	}
	if r.Jenkins != nil && r.Jenkins.Template != nil {
		fmt.Fprintf(w, "jenkins  %s: pod template %q -> %s\n", r.Jenkins.Status, r.Jenkins.Template.Name, r.Jenkins.Template.Image)
	}
}
