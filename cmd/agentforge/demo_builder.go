package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/cmd/agentforge/internal/demo"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher/release"
	"github.com/agentforge/agentforge/publisher/sign"
	"go.podman.io/storage"
)

// builderDemo is what the demo did with agentforge's own builder image.
type builderDemo struct {
	// Release built images/agentforge from make dist's binary, verified
	// it, ran agentforge in it, ran the pod build, published it signed
	// with its SBOM.
	Release *release.Report `json:"release"`
	// PodBuild is testdata/busybox built inside the builder image run as
	// a pod; HostDigest the same build on this machine.
	PodBuild   *demo.PodBuild `json:"podBuild,omitempty"`
	HostDigest string         `json:"hostDigest,omitempty"`
	// Verified is the signature and SBOM check on the registry.
	Verified *demoSignature `json:"verified,omitempty"`
	// Jenkins is the builder's own pod template, registered from
	// images/agentforge/pod.yaml.
	Jenkins *jenkins.Outcome `json:"jenkins,omitempty"`
}

// builderDemoEnv is what the builder part of the demo shares with the
// python-agent release before it.
type builderDemoEnv struct {
	store     storage.Store
	distDir   string
	work      string
	baseImage string
	registry  string
	jnlpImage string
	revision  string
	renv      release.Env
	jenkins   jenkins.Config
	pubFile   string
}

// runBuilderDemo builds agentforge's own builder image (images/agentforge)
// from make dist's binary for this machine, checks it, runs one build
// inside it as a privileged root pod, publishes it signed with its SBOM,
// verifies that, and registers the builder's pod template.
func (a *app) runBuilderDemo(ctx context.Context, e builderDemoEnv) (*builderDemo, []demo.StandIn, error) {
	b, err := demo.PrepareBuilder(ctx, e.distDir, currentVersion(), e.baseImage, e.revision)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range b.StandIns {
		a.log.Warnf("STAND-IN: %s -> %s (%s)", s.What, s.Instead, s.Why)
	}
	out := &builderDemo{}
	file := &release.File{
		Definition:   demo.BuilderDefinition,
		Set:          b.Set,
		Smoke:        [][]string{{"agentforge", "--version"}, {"git", "--version"}, {"sh", "-c", "test -s /etc/ssl/certs/ca-certificates.crt && git config --system --get safe.directory"}},
		Destinations: []string{e.registry + "/agents/agentforge"},
	}
	renv := e.renv
	renv.SBOMFile = filepath.Join(e.work, "agentforge.spdx.json")
	rc, err := file.Config(renv)
	if err != nil {
		return out, b.StandIns, err
	}
	rc.Pod = &release.PodCheck{Script: b.Pod, Options: b.PodRun}
	a.log.Infof("the builder image: %s from %s, then testdata/busybox built inside it as a pod", demo.BuilderDefinition, e.distDir)
	out.Release, err = release.Run(ctx, rc)
	if err != nil {
		return out, b.StandIns, fmt.Errorf("builder image: %w", err)
	}
	rep := out.Release
	if got := rep.Smoke[0].Output; !strings.HasPrefix(got, "agentforge "+currentVersion()+" ") {
		return out, b.StandIns, fmt.Errorf("builder image: agentforge --version inside says %q, this agentforge is %s: dist is not this build (make dist)", got, currentVersion())
	}
	if out.PodBuild, err = demo.ParsePodBuild(rep.Pod); err != nil {
		return out, b.StandIns, fmt.Errorf("builder image: %w\n%s", err, rep.Pod)
	}
	// The same build on this machine must give the same image: the
	// builder image builds what agentforge builds anywhere.
	host, err := a.hostBusybox(ctx, e.store, b, e.renv)
	if err != nil {
		return out, b.StandIns, err
	}
	out.HostDigest = host
	if host != out.PodBuild.Digest {
		return out, b.StandIns, fmt.Errorf("builder image: testdata/busybox built in the pod is %s, on this machine %s: not reproducible", out.PodBuild.Digest, host)
	}
	// What an admission policy checks before a node pulls it.
	d := rep.Destinations[0]
	ref, err := canonical(d.Ref)
	if err != nil {
		return out, b.StandIns, err
	}
	check, err := a.checkSignature(ctx, ref, e.pubFile, sign.SBOMRequired)
	out.Verified = &demoSignature{Ref: d.Ref, Check: check}
	if err != nil {
		return out, b.StandIns, fmt.Errorf("builder image %s: %w", d.Ref, err)
	}
	// The builder's own pod template: the inbound agent as jnlp, the
	// builder image beside it from the pod YAML, pinned to what was just
	// published.
	podYAML, err := demo.PodYAML(demo.BuilderPodYAML, ref.String())
	if err != nil {
		return out, b.StandIns, err
	}
	c, err := jenkins.New(ctx, e.jenkins)
	if err != nil {
		return out, b.StandIns, err
	}
	out.Jenkins, err = c.Register(ctx, jenkins.Template{Cloud: "kubernetes", Name: "agentforge-builder", Label: "agentforge", Image: e.jnlpImage, YAML: podYAML, InstanceCap: -1}, jenkins.Options{})
	standIns := append(b.StandIns, demo.StandIn{What: "docker.io/jenkins/inbound-agent as the builder template's jnlp container", Instead: e.jnlpImage + " (the demo's python-agent, which has the same entrypoint contract)", Why: "Docker Hub is not reachable here"})
	return out, standIns, err
}

// hostBusybox builds testdata/busybox on this machine as the pod built it
// (same revision, Debian archive and the definition's own timestamp) and
// returns its digest.
func (a *app) hostBusybox(ctx context.Context, store storage.Store, b *demo.Builder, renv release.Env) (string, error) {
	def, err := images.Find("testdata/busybox", map[string]string{"debian.archive": b.Archive})
	if err != nil {
		return "", err
	}
	res, err := builder.Build(ctx, def, builder.BuildOptions{
		Store: store, Hosts: renv.Hosts, Revision: b.Revision, Output: renv.Output, Log: a.log,
		Fetcher: &source.Fetcher{CacheDir: renv.CacheDir, Log: a.log},
	})
	if err != nil {
		return "", fmt.Errorf("testdata/busybox on this machine: %w", err)
	}
	return res.Digest, nil
}

func printBuilderDemo(w io.Writer, b *builderDemo) {
	if b == nil || b.Release == nil {
		return
	}
	r := b.Release
	fmt.Fprint(w, "builder image:")
	for _, s := range r.Stages {
		fmt.Fprintf(w, " %s %s (%.1fs)", s.Name, s.Status, s.Seconds)
	}
	fmt.Fprintln(w)
	if r.Image != nil {
		fmt.Fprintf(w, "  image   %s\n  digest  %s\n", strings.Join(r.Image.Names, ", "), r.Image.Digest)
	}
	for _, s := range r.Smoke {
		fmt.Fprintf(w, "  $ %s\n    %s\n", s.Command, strings.ReplaceAll(s.Output, "\n", "\n    "))
	}
	if b.PodBuild != nil {
		fmt.Fprintf(w, "  in the builder image, as a privileged root pod: testdata/busybox built in %.1fs, %s (on this machine: %s)\n", b.PodBuild.Seconds, b.PodBuild.Digest, b.HostDigest)
	}
	for _, l := range strings.Split(r.Pod, "\n") {
		if strings.HasPrefix(l, "init: ") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	for _, d := range r.Destinations {
		fmt.Fprintf(w, "  pushed  %s verified=%t\n", d.Ref, d.Verified)
	}
	if b.Verified != nil {
		fmt.Fprintf(w, "  verified signature and SBOM attestation on %s\n", b.Verified.Ref)
	}
	if j := b.Jenkins; j != nil && j.Template != nil {
		fmt.Fprintf(w, "  jenkins %s: pod template %q (label agentforge) with the builder container from %s\n", j.Status, j.Template.Name, demo.BuilderPodYAML)
	}
}

// checkDist refuses a --dist folder without make dist's SHA256SUMS before
// the demo starts ("" leaves the builder image out).
func checkDist(dir string) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "SHA256SUMS")); err != nil {
		return errs.Inputf("--dist %s: no SHA256SUMS there (run make dist; --dist \"\" leaves the builder image out)", dir)
	}
	return nil
}
