package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/cmd/agentforge/internal/demo"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/jenkins/emulator"
	"github.com/agentforge/agentforge/publisher/registry"
	"github.com/agentforge/agentforge/publisher/release"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
	"go.podman.io/storage"
)

// demoReport is the demo's JSON output.
type demoReport struct {
	Runs []*release.Report `json:"runs"`
	// Verified are the signature and SBOM attestation checks on every
	// destination after the runs, with the demo's public key.
	Verified []demoSignature `json:"verified"`
	StandIns []demo.StandIn  `json:"standIns"`
	// Builder is agentforge's own builder image (--dist).
	Builder *builderDemo `json:"builder,omitempty"`
}

// demoSignature is the check of one destination's signature.
type demoSignature struct {
	Ref string `json:"ref"`
	*sign.Check
}

var smokeCommands = [][]string{
	{"python3", "--version"},
	{"pip3", "--version"},
	{"pip3", "list", "--format=freeze", "--disable-pip-version-check"},
	{"podman", "--version"},
	{"java", "-version"},
	{"java", "-jar", "/usr/share/jenkins/agent.jar", "-version"},
	{"git", "--version"},
	{"make", "--version"},
	{"sh", "-c", "id && test -s /usr/share/jenkins/agent.jar && test -x /usr/local/bin/jenkins-agent && test -x /usr/bin/catatonit && pwd"},
}

func (a *app) demoCommand() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole release offline, on embedded services and stand-ins",
		Long: `Demo builds the real images/python-agent definition on this machine with no
access to Ubuntu's archive, python.org, PyPI or repo.jenkins-ci.org: a Debian 13
(trixie) base made with debootstrap stands in for Ubuntu 24.04 (the same
OpenJDK 21 package), CPython comes from Debian's source archive (byte-identical
to python.org's tarball) and pip, setuptools, wheel and packaging from
Debian's wheel packages, each through --source-mirror, and a labelled
stand-in that java starts replaces the remoting jar. It then verifies the
image, runs python3, pip3, podman, java, the agent jar, git and make inside it
(chroot) and checks it as a pod runs it (Java 21 or later, the pinned Python
tools, rootless podman, catatonit as PID 1 reaping orphans and passing
SIGTERM on), then
publishes it to two embedded registries (an upstream and a mirror), verifies
both, and registers the pod template, pinned by digest, in an embedded Jenkins
emulator. It signs the published digest with a key pair it generates and
attaches the image's SPDX SBOM as a signed attestation, then checks both on
every destination with the public key. It runs the release twice: the second
run must give the same digest from the cache, send no blob and leave the
template unchanged.
With --dist (make demo: make dist's folder) it then builds agentforge's own
builder image (images/agentforge) from the binary there, checks it, runs one
build of testdata/busybox inside it the way a Kubernetes pod runs it
(privileged, root, an emptyDir for containers-storage), which must give the
same digest as the same build here, publishes it signed with its SBOM and
registers the builder's pod template (images/agentforge/pod.yaml).
Everything it stood in for is printed, with the reason.`,
		Example: `  agentforge demo -o json
  agentforge demo --dist dist    # as make demo runs it: then the builder image, built from dist`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			rep, err := a.runDemo(cmd.Context(), store, f)
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printDemo(w, rep) })
			}
			return err
		},
	}
	cmd.Flags().StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "where downloads and the debootstrap root file system are kept between runs")
	cmd.Flags().StringVar(&f.distDir, "dist", "", "make dist's folder: also build agentforge's builder image from it and run a build inside it as a pod (make demo passes dist)")
	cmd.Flags().BoolVar(&f.optimize, "optimize", false, "build CPython with PGO + LTO as the real definition does (tens of minutes on 2 cores) instead of a plain build")
	return cmd
}

// demoFlags are demo's: the cache, make dist's folder (the builder image's
// part runs only with it) and a CPython built as the real definition is.
type demoFlags struct {
	cacheDir, distDir string
	optimize          bool
}

func (a *app) runDemo(ctx context.Context, store storage.Store, f demoFlags) (*demoReport, error) {
	cacheDir, distDir := f.cacheDir, f.distDir
	if err := checkDist(distDir); err != nil {
		return nil, err
	}
	plain, err := images.Find(release.DefaultDefinition, nil)
	if err != nil {
		return nil, err
	}
	fetcher := &source.Fetcher{CacheDir: cacheDir, Log: a.log, Progress: a.progress}
	work := filepath.Join(cacheDir, "demo")
	env, err := demo.Prepare(ctx, store, plain, work, fetcher, a.stderr, a.log)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	if f.optimize {
		env.Optimize()
	}
	rep := &demoReport{StandIns: env.StandIns}

	// Two embedded registries: the upstream and a domestic mirror.
	var regs []*registry.Server
	for _, name := range []string{"upstream", "mirror"} {
		root := filepath.Join(work, "registry-"+name)
		os.RemoveAll(root) // fresh registries: the first run really pushes
		srv, err := registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", Root: root})
		if err != nil {
			return nil, err
		}
		defer srv.Close()
		a.log.Infof("embedded %s registry on %s", name, srv.Addr)
		regs = append(regs, srv)
		a.insecure = append(a.insecure, srv.Addr)
	}
	// A Jenkins emulator with a Kubernetes cloud, running the registration
	// script with Groovy 2.4 against stubs of the plugin's classes.
	token := demoToken()
	jenkinsDir := filepath.Join(work, "jenkins")
	os.RemoveAll(jenkinsDir)
	if err := os.MkdirAll(jenkinsDir, 0o700); err != nil {
		return nil, err
	}
	emu, err := emulator.Start(emulator.Options{
		Users: []emulator.User{{Name: "agentforge-demo", Token: token, Admin: true}},
		State: emulator.State{Clouds: []emulator.Cloud{{Kind: "kubernetes", Name: "kubernetes"}}},
	}, jenkinsDir)
	if err != nil {
		return nil, fmt.Errorf("demo Jenkins (needs groovy and default-jre-headless; make demo installs them): %w", err)
	}
	defer emu.Close()
	tokenFile := filepath.Join(jenkinsDir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return nil, err
	}
	rep.StandIns = append(rep.StandIns,
		demo.StandIn{What: "the upstream registry and a DaoCloud-style domestic mirror", Instead: "two embedded registries (distribution v3) on " + regs[0].Addr + " and " + regs[1].Addr, Why: "no registry is reachable from here"},
		demo.StandIn{What: "a Jenkins controller with the Kubernetes plugin", Instead: "agentforge's Jenkins emulator on " + emu.URL + ", running the registration scripts with Groovy 2.4 against stubs of the plugin's classes", Why: "Jenkins cannot be installed here"},
	)
	if !builder.UserNamespaces(ctx) {
		rep.StandIns = append(rep.StandIns, demo.StandIn{What: "rootless podman (build with RUN, run, overlay) in the pod check", Instead: "skipped; the rest of the pod check runs",
			Why: "this machine refuses user namespaces (a chroot such as a debootstrap root, or a host that disables them), so no container started from here can run rootless podman"})
	}
	for _, s := range rep.StandIns {
		a.log.Warnf("STAND-IN: %s -> %s (%s)", s.What, s.Instead, s.Why)
	}

	file := &release.File{
		Definition: release.DefaultDefinition, Set: env.Overrides,
		SourceMirrors: env.SourceMirrors,
		Smoke:         smokeCommands,
		Pod:           demo.PodCheck,
		Destinations:  []string{regs[0].Addr + "/agents/python-agent", regs[1].Addr + "/registry.example/agents/python-agent"},
		Jenkins: &release.JenkinsFile{URL: emu.URL, User: "agentforge-demo", TokenFile: tokenFile, Template: jenkins.Template{
			Name: "python-agent", Label: "python", InstanceCap: -1, MemoryRequest: "1Gi", CPURequest: "500m", Podman: jenkins.PodmanPrivileged}},
	}
	for name := range env.SkipSignature {
		file.SkipSignature = append(file.SkipSignature, name)
	}
	renv, err := a.releaseEnv(store, file, cacheDir)
	if err != nil {
		return rep, err
	}
	// A signing key of the demo's own, as a user makes one with
	// agentforge keygen or cosign generate-key-pair.
	pass := []byte(demoToken())
	privPEM, pubPEM, err := sign.GenerateKeyPair(pass)
	if err != nil {
		return rep, err
	}
	pubFile := filepath.Join(work, "cosign.pub")
	if err := os.WriteFile(pubFile, pubPEM, 0o644); err != nil {
		return rep, err
	}
	if renv.Signer, err = sign.ParsePrivateKey(privPEM, pass); err != nil {
		return rep, err
	}
	renv.SBOMFile = filepath.Join(work, "python-agent.spdx.json")
	rc, err := file.Config(renv)
	if err != nil {
		return rep, err
	}
	for i := 1; i <= 2; i++ {
		a.log.Infof("demo run %d of 2", i)
		run, err := release.Run(ctx, rc)
		if run != nil {
			rep.Runs = append(rep.Runs, run)
		}
		if err != nil {
			return rep, err
		}
	}
	first, second := rep.Runs[0], rep.Runs[1]
	if first.Image.Digest != second.Image.Digest {
		return rep, fmt.Errorf("demo: the second run built %s, the first %s: the build is not reproducible", second.Image.Digest, first.Image.Digest)
	}
	if second.Jenkins.Status != "unchanged" {
		return rep, fmt.Errorf("demo: the second registration reported %q, not unchanged", second.Jenkins.Status)
	}
	for _, sg := range second.Signatures {
		if sg.Signature != nil && sg.Signature.Added || sg.SBOM != nil && sg.SBOM.Added {
			return rep, fmt.Errorf("demo: the second run added a signature or attestation to %s: signing is not idempotent", sg.Ref)
		}
	}
	// What an admission policy would do: the signature and the SBOM
	// attestation verify with the public key on every destination.
	for _, d := range second.Destinations {
		ref, err := canonical(d.Ref)
		if err != nil {
			return rep, err
		}
		check, err := a.checkSignature(ctx, ref, pubFile, sign.SBOMRequired)
		rep.Verified = append(rep.Verified, demoSignature{Ref: d.Ref, Check: check})
		if err != nil {
			return rep, fmt.Errorf("demo: %s: %w", d.Ref, err)
		}
	}
	if distDir != "" {
		var standIns []demo.StandIn
		rep.Builder, standIns, err = a.runBuilderDemo(ctx, builderDemoEnv{
			store: store, distDir: distDir, work: work, baseImage: env.BaseImage, registry: regs[0].Addr,
			jnlpImage: second.Jenkins.Template.Image, revision: first.Image.Revision, renv: renv, pubFile: pubFile,
			jenkins: jenkins.Config{URL: emu.URL, User: "agentforge-demo", Token: token, Log: a.log, Secrets: a.secrets},
		})
		rep.StandIns = append(rep.StandIns, standIns...)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// demoToken makes a random API token for the demo's Jenkins.
func demoToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func printDemo(w io.Writer, r *demoReport) {
	for i, run := range r.Runs {
		fmt.Fprintf(w, "run %d:", i+1)
		for _, s := range run.Stages {
			fmt.Fprintf(w, " %s %s (%.1fs)", s.Name, s.Status, s.Seconds)
		}
		fmt.Fprintln(w)
		if run.Image != nil {
			fmt.Fprintf(w, "  image   %s\n  digest  %s\n", strings.Join(run.Image.Names, ", "), run.Image.Digest)
		}
		if run.Verify != nil {
			fmt.Fprintf(w, "  verify  ok=%t, %d layers\n", run.Verify.OK, len(run.Verify.Layers))
		}
		for _, d := range run.Destinations {
			fmt.Fprintf(w, "  pushed  %s verified=%t (%d blobs sent, %d already there)\n", d.Ref, d.Verified, d.BlobsPushed, d.BlobsSkipped)
		}
		if j := run.Jenkins; j != nil && j.Template != nil {
			fmt.Fprintf(w, "  jenkins %s: pod template %q (id %s) -> %s\n", j.Status, j.Template.Name, j.Template.ID, j.Template.Image)
		}
		if i == 0 {
			for _, s := range run.Smoke {
				fmt.Fprintf(w, "  $ %s\n    %s\n", s.Command, strings.ReplaceAll(s.Output, "\n", "\n    "))
			}
			if run.Pod != "" {
				fmt.Fprintf(w, "  pod check (the image run as a pod runs it):\n    %s\n", strings.ReplaceAll(run.Pod, "\n", "\n    "))
			}
		}
	}
	for _, v := range r.Verified {
		fmt.Fprintf(w, "verified signature and SBOM attestation (demo key %s) on %s\n", "cosign.pub", v.Ref)
	}
	if len(r.Runs) > 0 {
		for _, p := range r.Runs[0].SBOM {
			fmt.Fprintf(w, "SBOM (SPDX 2.3) %s\n", p)
		}
	}
	printBuilderDemo(w, r.Builder)
	fmt.Fprintln(w, "stand-ins (what this offline demo used instead, and why):")
	for _, s := range r.StandIns {
		fmt.Fprintf(w, "  - %s\n      instead: %s\n      why: %s\n", s.What, s.Instead, s.Why)
	}
}
