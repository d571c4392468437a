// Package release runs agentforge's main use case as one call: build a
// definition, verify it, run smoke commands in it, publish the same bytes to
// every destination and verify each there, then register the Jenkins pod
// template pinned to image@sha256 — Jenkins is told only about an image
// every destination serves with the expected digest.
//
// It lives under publisher because it is the one package that composes
// builder, publisher and jenkins; publisher itself never imports it.
package release

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/sbom"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/sirupsen/logrus"
)

// Config is one release.
type Config struct {
	// Definition is what to build.
	Definition *images.Definition
	// Build are the build options; Build.Store is required.
	Build builder.BuildOptions
	// Smoke are commands run inside the built image (chroot) before
	// anything is published; a failing one fails the release.
	Smoke [][]string
	// Pod, when set, is a bash script run in the built image the way a
	// Kubernetes pod runs it (builder.RunAsPod), before anything is
	// published; a failure fails the release.
	Pod *PodCheck
	// Destinations are the registries to publish to, upstream first.
	Destinations []publisher.Destination
	// Publish are the publish options (registries, verification, work dir).
	Publish publisher.Options
	// Signer, when set, signs the published digest on every destination
	// (cosign-compatible) and attaches the build's SBOM as a signed SPDX
	// attestation (a list: each platform image with its own SBOM, then the
	// index), after verification and before any tag is written there
	// (publisher.Signing), so before Jenkins is told.
	Signer sign.Signer
	// SBOMFile, when set, is where the build's SPDX 2.3 SBOM is written
	// (a list: one per platform, FILE-os-arch.spdx.json).
	SBOMFile string
	// Jenkins, when set, is where the pod template is registered.
	Jenkins *Jenkins
	// Log receives stage progress; nil discards it.
	Log logrus.FieldLogger
}

// Jenkins says which pod template to register where.
type Jenkins struct {
	// Client reaches Jenkins (URL, user, token).
	Client jenkins.Config
	// Template is the pod template; its Image is set by Run to the
	// chosen destination's repository at the published digest.
	Template jenkins.Template
	// Destination is the index in Config.Destinations whose reference
	// Jenkins pulls (0, the upstream, by default).
	Destination int
	// Options tune the registration (e.g. adopting a template made by hand).
	Options jenkins.Options
	// CascFile, when set, is the configuration-as-code YAML file the
	// template is merged into instead of registering through the script
	// console (jenkins.UpdateCascFile); with CascReload Jenkins then reloads
	// it and the template is read back (Client.RegisterCasc).
	CascFile   string
	CascReload bool
}

// Report is what a release did, stage by stage.
type Report struct {
	Image        *builder.Result    `json:"image"`
	Verify       *oci.VerifyReport  `json:"verify,omitempty"`
	Smoke        []Smoke            `json:"smoke,omitempty"`
	Pod          string             `json:"pod,omitempty"`
	Destinations []publisher.Result `json:"destinations"`
	// Manifests are the published platform images of a multi-platform
	// release (their registry digests).
	Manifests  []publisher.IndexEntry `json:"manifests,omitempty"`
	Signatures []sign.Signed          `json:"signatures,omitempty"`
	SBOM       []string               `json:"sbom,omitempty"`
	Jenkins    *jenkins.Outcome       `json:"jenkins"`
	Stages     []Stage                `json:"stages"`
}

// Stage is one timed step of a release.
type Stage struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"`
	Seconds float64 `json:"seconds"`
}

// PodCheck is a script run in the built image as a pod would run it.
type PodCheck struct {
	Script  string
	Options builder.PodRunOptions
}

// Smoke is one command run inside the built image, with its output.
type Smoke struct {
	Command string `json:"command"`
	Output  string `json:"output"`
}

// Check validates cfg without doing anything: bad input (errs.ErrInput) is
// found before anything is built.
func (cfg *Config) Check() error {
	if cfg.Definition == nil {
		return errs.Inputf("release: no definition")
	}
	if cfg.Build.Store == nil {
		return errs.Inputf("release: no storage")
	}
	if len(cfg.Destinations) == 0 {
		return errs.Inputf("release: no destination")
	}
	if j := cfg.Jenkins; j != nil {
		if j.CascReload && j.CascFile == "" {
			return errs.Inputf("release: jenkins cascReload goes with cascFile")
		}
		if j.Options.ScriptConsole && j.CascFile != "" {
			return errs.Inputf("release: jenkins scriptConsole and cascFile are two routes: choose one")
		}
		// Read at register time, after the image is published: a wrong
		// path is bad input found now, as the token file is.
		if j.Client.CAFile != "" && (j.CascFile == "" || j.CascReload) {
			if err := jenkins.CheckCAFile(j.Client.CAFile); err != nil {
				return fmt.Errorf("release: %w", err)
			}
		}
		if j.Destination < 0 || j.Destination >= len(cfg.Destinations) {
			return errs.Inputf("release: jenkins destination %d: there are %d destinations", j.Destination, len(cfg.Destinations))
		}
		t := j.Template
		// Checked before anything is built; checked again with the real digest.
		t.Image = "placeholder@sha256:" + strings.Repeat("0", 64)
		if err := t.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Run builds, verifies, smoke-tests, publishes (verifying every
// destination) and registers, stopping at the first stage that fails. The
// report holds every stage that ran, also on failure.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = oci.Discard
	}
	rep := &Report{}
	timed := func(name string, fn func() error) error {
		start := time.Now()
		err := fn()
		st := Stage{Name: name, Status: "ok", Seconds: time.Since(start).Seconds()}
		if err != nil {
			st.Status = "failed"
		}
		rep.Stages = append(rep.Stages, st)
		log.WithField("seconds", fmt.Sprintf("%.1f", st.Seconds)).Infof("stage %s: %s", name, st.Status)
		return err
	}
	store := cfg.Build.Store
	if err := timed("build", func() (err error) { rep.Image, err = builder.Build(ctx, cfg.Definition, cfg.Build); return err }); err != nil {
		return rep, err
	}
	if cfg.SBOMFile != "" {
		var err error
		if rep.SBOM, err = sbom.WriteFiles(cfg.SBOMFile, rep.Image.SBOMs()); err != nil {
			return rep, err
		}
	}
	if err := timed("verify", func() error {
		ref, err := oci.ParseReference(rep.Image.ID, store)
		if err != nil {
			return err
		}
		rep.Verify, err = oci.Verify(ctx, ref, oci.VerifyOptions{Log: log, Progress: cfg.Build.Progress})
		return err
	}); err != nil {
		return rep, err
	}
	// A multi-platform build is smoke-tested on every platform (foreign
	// ones under qemu), and pod-checked on this machine's: rootless podman
	// under qemu-user emulation says nothing about a real node.
	type target struct{ platform, id string }
	targets := []target{{rep.Image.Platform, rep.Image.ID}}
	podID := rep.Image.ID
	if len(rep.Image.Manifests) > 0 {
		targets, podID = nil, ""
		for _, m := range rep.Image.Manifests {
			targets = append(targets, target{m.Platform, m.ID})
			if m.Platform == oci.HostPlatform().String() {
				podID = m.ID
			}
		}
	}
	if len(cfg.Smoke) > 0 {
		if err := timed("smoke", func() error {
			for _, tg := range targets {
				for _, argv := range cfg.Smoke {
					var out bytes.Buffer
					cmd := strings.Join(argv, " ")
					if len(targets) > 1 {
						cmd = "[" + tg.platform + "] " + cmd
					}
					if err := builder.Run(ctx, store, tg.id, argv, &out, &out); err != nil {
						return fmt.Errorf("smoke %s: %w\n%s", cmd, err, out.String())
					}
					rep.Smoke = append(rep.Smoke, Smoke{Command: cmd, Output: strings.TrimSpace(out.String())})
				}
			}
			return nil
		}); err != nil {
			return rep, err
		}
	}
	if cfg.Pod != nil && podID == "" {
		log.Warnf("pod check skipped: no platform built is this machine's (%s)", oci.HostPlatform())
	}
	if cfg.Pod != nil && podID != "" {
		if err := timed("pod", func() error {
			var out bytes.Buffer
			o := cfg.Pod.Options
			o.Stdout, o.Stderr = &out, &out
			err := builder.RunAsPod(ctx, store, podID, cfg.Pod.Script, o)
			rep.Pod = strings.TrimSpace(out.String())
			if err != nil {
				return fmt.Errorf("pod check: %w\n%s", err, rep.Pod)
			}
			return nil
		}); err != nil {
			return rep, err
		}
	}
	var digest string
	if err := timed("publish", func() (err error) {
		opts := cfg.Publish
		if opts.Log == nil {
			opts.Log = log
		}
		if cfg.Signer != nil {
			if opts.Sign, err = signing(cfg.Signer, rep.Image); err != nil {
				return err
			}
		}
		ir, err := publisher.PublishLocal(ctx, store, rep.Image.ID, withTags(cfg.Destinations, rep.Image), opts)
		if ir != nil {
			rep.Destinations, digest, rep.Manifests = ir.Destinations, ir.Digest, ir.Manifests
			rep.Signatures = listSignatures(ir, rep.Image)
		}
		return err
	}); err != nil {
		return rep, err
	}
	if cfg.Jenkins == nil {
		return rep, nil
	}
	// Every destination serves the digest (publish verified each one): now
	// Jenkins may be told.
	tmpl := cfg.Jenkins.Template
	tmpl.Image = cfg.Destinations[cfg.Jenkins.Destination].Repo.Name() + "@" + digest
	err := timed("register", func() (err error) {
		if cfg.Jenkins.CascFile != "" && !cfg.Jenkins.CascReload {
			rep.Jenkins, err = jenkins.UpdateCascFile(cfg.Jenkins.CascFile, tmpl, cfg.Jenkins.Options)
			return err
		}
		cc := cfg.Jenkins.Client
		if cc.Log == nil {
			cc.Log = log
		}
		c, err := jenkins.New(ctx, cc)
		if err != nil {
			return err
		}
		if cfg.Jenkins.CascFile != "" {
			rep.Jenkins, err = c.RegisterCasc(ctx, cfg.Jenkins.CascFile, tmpl, cfg.Jenkins.Options)
		} else {
			rep.Jenkins, err = c.Register(ctx, tmpl, cfg.Jenkins.Options)
		}
		return err
	})
	return rep, err
}

// withTags gives destinations named without a tag the build's tags (the
// immutable ones, such as the one derived from the image's ID, and the
// rolling ones, which move on purpose).
func withTags(dests []publisher.Destination, res *builder.Result) []publisher.Destination {
	out := slices.Clone(dests)
	for i, d := range out {
		if len(d.Tags) == 0 {
			out[i].Tags, out[i].Rolling = res.Tags, res.RollingTags
		}
	}
	return out
}

// signing is what a release signs with s: the image (a list: the index)
// with the build's SBOM, and a list's platform images each with its own.
func signing(s sign.Signer, res *builder.Result) (*publisher.Signing, error) {
	out := &publisher.Signing{Signer: s}
	var err error
	if res.SBOM != nil {
		if out.SBOM, err = res.SBOM.JSON(); err != nil {
			return nil, err
		}
	}
	for _, m := range res.Manifests {
		if m.SBOM == nil {
			continue
		}
		if out.PlatformSBOMs == nil {
			out.PlatformSBOMs = map[string][]byte{}
		}
		if out.PlatformSBOMs[m.Platform], err = m.SBOM.JSON(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// listSignatures are the signatures of a published list: the index's on
// every destination, then each platform image's (in the build's order) on
// every destination. Nil when nothing was signed.
func listSignatures(ir *publisher.IndexReport, res *builder.Result) []sign.Signed {
	if ir.Signatures == nil {
		return nil
	}
	out := append([]sign.Signed(nil), ir.Signatures...)
	for _, m := range res.Manifests {
		for _, e := range ir.Manifests {
			if oci.NormalizePlatform(e.Platform) == oci.NormalizePlatform(m.Platform) {
				out = append(out, e.Signatures...)
			}
		}
	}
	return out
}
