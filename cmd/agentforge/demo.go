package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/cmd/agentforge/internal/demo"
	"github.com/agentforge/agentforge/publisher"
	"github.com/agentforge/agentforge/publisher/registry"
	"github.com/spf13/cobra"
	"go.podman.io/storage"
)

// stage is one timed step of a release run.
type stage struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"`
	Seconds float64 `json:"seconds"`
}

// smoke is one command run inside the built image.
type smoke struct {
	Command string `json:"command"`
	Output  string `json:"output"`
}

// demoRun is one pass of the release chain.
type demoRun struct {
	Image        *builder.Result       `json:"image"`
	Verify       *builder.VerifyReport `json:"verify"`
	Smoke        []smoke               `json:"smoke"`
	Destinations []publisher.Result    `json:"destinations"`
	Stages       []stage               `json:"stages"`
}

// demoReport is the demo's JSON output.
type demoReport struct {
	Runs     []demoRun      `json:"runs"`
	StandIns []demo.StandIn `json:"standIns"`
}

var smokeCommands = [][]string{
	{"python3", "--version"},
	{"pip3", "--version"},
	{"podman", "--version"},
	{"java", "-version"},
	{"git", "--version"},
	{"make", "--version"},
	{"sh", "-c", "id && test -s /usr/share/jenkins/agent.jar && test -x /usr/local/bin/jenkins-agent && pwd"},
}

func (a *app) demoCommand() *cobra.Command {
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole release offline, on embedded services and stand-ins",
		Long: `Demo builds the real images/python-agent definition on this machine with no
access to Ubuntu's archive, python.org or repo.jenkins-ci.org: a Debian bookworm
base made with debootstrap stands in for Ubuntu, CPython comes from Debian's
source archive (byte-identical to python.org's tarball) through --source-mirror,
and a labelled stand-in replaces the remoting jar. It then verifies the image
and runs python3, pip3, podman, java, git and make inside it (chroot), then
publishes it to two embedded registries (an upstream and a mirror) and verifies
both. It runs the chain twice: the second run must give the same digest from the
cache and send no blob.
Everything it stood in for is printed, with the reason.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			rep, err := a.runDemo(cmd.Context(), store, cacheDir)
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printDemo(w, rep) })
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache-dir", defaultCacheDir(), "where downloads and the debootstrap root file system are kept between runs")
	return cmd
}

func (a *app) runDemo(ctx context.Context, store storage.Store, cacheDir string) (*demoReport, error) {
	plain, err := loadDefinition("images/python-agent", nil)
	if err != nil {
		return nil, err
	}
	fetcher := &builder.Fetcher{CacheDir: cacheDir, Log: a.log}
	env, err := demo.Prepare(ctx, store, plain, filepath.Join(cacheDir, "demo"), fetcher, a.stderr, a.log)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	rep := &demoReport{StandIns: env.StandIns}
	// Two embedded registries: the upstream and a domestic mirror.
	var regs []*registry.Server
	for _, name := range []string{"upstream", "mirror"} {
		root := filepath.Join(cacheDir, "demo", "registry-"+name)
		os.RemoveAll(root) // fresh registries: the first run really pushes
		srv, err := registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", Root: root})
		if err != nil {
			return nil, err
		}
		defer srv.Close()
		a.log.Infof("embedded %s registry on %s", name, srv.Addr)
		regs = append(regs, srv)
	}
	dests := []publisher.Destination{}
	for i, repo := range []string{"/agents/python-agent", "/" + "registry.example/agents/python-agent"} {
		d, err := publisher.ParseDestination(regs[i].Addr+repo, plain.Tags)
		if err != nil {
			return nil, err
		}
		dests = append(dests, d)
	}
	rep.StandIns = append(rep.StandIns, demo.StandIn{
		What: "the upstream registry and a DaoCloud-style domestic mirror", Instead: "two embedded registries (distribution v3) on " + regs[0].Addr + " and " + regs[1].Addr,
		Why: "no registry is reachable from here",
	})
	for _, s := range env.StandIns {
		a.log.Warnf("STAND-IN: %s -> %s (%s)", s.What, s.Instead, s.Why)
	}
	def, err := loadDefinition("images/python-agent", env.Overrides)
	if err != nil {
		return nil, err
	}
	for i := 1; i <= 2; i++ {
		a.log.Infof("demo run %d of 2", i)
		run := demoRun{}
		timed := func(name string, fn func() error) error {
			start := time.Now()
			err := fn()
			st := stage{Name: name, Status: "ok", Seconds: time.Since(start).Seconds()}
			if err != nil {
				st.Status = "failed"
			}
			run.Stages = append(run.Stages, st)
			return err
		}
		err := timed("build", func() error {
			run.Image, err = builder.Build(ctx, def, builder.BuildOptions{
				Store: store, Output: a.stderr, Log: a.log, Registries: a.registries(nil),
				Fetcher: &builder.Fetcher{CacheDir: cacheDir, Mirrors: env.SourceMirrors, SkipSignature: env.SkipSignature, Log: a.log},
			})
			return err
		})
		if err == nil {
			err = timed("verify", func() error {
				ref, err := builder.ParseReference(run.Image.ID, store)
				if err != nil {
					return err
				}
				run.Verify, err = builder.Verify(ctx, ref, builder.VerifyOptions{Log: a.log})
				return err
			})
		}
		if err == nil {
			err = timed("smoke", func() error {
				for _, argv := range smokeCommands {
					var out bytes.Buffer
					if err := builder.Run(ctx, store, run.Image.ID, argv, &out, &out); err != nil {
						return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out.String())
					}
					run.Smoke = append(run.Smoke, smoke{Command: strings.Join(argv, " "), Output: strings.TrimSpace(out.String())})
				}
				return nil
			})
		}
		if err == nil {
			err = timed("publish", func() error {
				ref, err := builder.ParseReference(run.Image.ID, store)
				if err != nil {
					return err
				}
				pr, err := publisher.Publish(ctx, ref, dests, publisher.Options{
					Registries: publisher.Registries{Insecure: []string{regs[0].Addr, regs[1].Addr}},
					WorkDir:    filepath.Join(cacheDir, "publish"), Log: a.log,
				})
				if pr != nil {
					run.Destinations = pr.Destinations
				}
				return err
			})
		}
		rep.Runs = append(rep.Runs, run)
		if err != nil {
			return rep, err
		}
	}
	if a, b := rep.Runs[0].Image.Digest, rep.Runs[1].Image.Digest; a != b {
		return rep, fmt.Errorf("demo: the second run built %s, the first %s: the build is not reproducible", b, a)
	}
	return rep, nil
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
		if i == 0 {
			for _, s := range run.Smoke {
				fmt.Fprintf(w, "  $ %s\n    %s\n", s.Command, strings.ReplaceAll(s.Output, "\n", "\n    "))
			}
		}
	}
	fmt.Fprintln(w, "stand-ins (what this offline demo used instead, and why):")
	for _, s := range r.StandIns {
		fmt.Fprintf(w, "  - %s\n      instead: %s\n      why: %s\n", s.What, s.Instead, s.Why)
	}
}
