package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/release"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
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
}

// platforms merges platform and platforms.
func (c *releaseFile) platforms() []string {
	if c.Platform != "" {
		return append([]string{c.Platform}, c.Platforms...)
	}
	return c.Platforms
}

// releaseJenkins is the Jenkins part of a release file: where Jenkins is
// and the pod template itself, register's jenkins.Template with its yaml
// keys (template, label, namespace, ..., podman, imagePullSecrets,
// nodeSelector, env); the image is the published digest. The token never
// goes in the file: $JENKINS_API_TOKEN or tokenFile.
type releaseJenkins struct {
	URL       string `yaml:"url"`
	User      string `yaml:"user"`
	TokenFile string `yaml:"tokenFile"`
	// Destination is the index in destinations whose reference Jenkins
	// pulls (default 0, the upstream).
	Destination      int  `yaml:"destination"`
	Adopt            bool `yaml:"adopt"`
	jenkins.Template `yaml:",inline"`
}

// template is the pod template the release registers: the file's, with
// the defaults filled in. An image of one architecture must land on nodes
// of that architecture (kubernetes.io/arch, unless the file sets it); an
// index serves every one it lists (a node pulls its own platform), so it
// gets no selector.
func (j *releaseJenkins) template(definition string, platforms []string) jenkins.Template {
	t := j.Template
	t.Cloud, t.Name, t.Label = or(t.Cloud, "kubernetes"), or(t.Name, definition), or(t.Label, "python")
	if len(platforms) <= 1 && t.NodeSelector[jenkins.ArchLabel] == "" {
		arch := runtime.GOARCH
		if len(platforms) == 1 {
			if parts := strings.Split(platforms[0], "/"); len(parts) >= 2 {
				arch = parts[1]
			}
		}
		t.NodeSelector = maps.Clone(t.NodeSelector)
		if t.NodeSelector == nil {
			t.NodeSelector = map[string]string{}
		}
		t.NodeSelector[jenkins.ArchLabel] = arch
	}
	return t
}

func loadReleaseFile(path string) (*releaseFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Inputf("--config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// The template's defaults (instanceCap unlimited) before the file's values.
	c := releaseFile{Jenkins: &releaseJenkins{Template: jenkins.Template{InstanceCap: -1}}}
	if err := dec.Decode(&c); err != nil {
		return nil, errs.Inputf("%s: %w", path, err)
	}
	var has struct {
		Jenkins yaml.Node `yaml:"jenkins"`
	}
	if yaml.Unmarshal(data, &has) != nil || has.Jenkins.Kind == 0 {
		c.Jenkins = nil
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
template "unchanged".`,
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
		tmpl := j.template(rc.Definition.Name, cfg.platforms())
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
