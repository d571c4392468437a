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
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"gopkg.in/yaml.v3"
)

// releaseConfig is the release file (--config): what to build, where to
// publish it, and which Jenkins pod template to point at it.
type releaseConfig struct {
	Definition      string            `yaml:"definition"`
	Set             map[string]string `yaml:"set"`
	SourceMirrors   []string          `yaml:"sourceMirrors"`
	RegistryMirrors []string          `yaml:"registryMirrors"`
	SkipSignature   []string          `yaml:"skipSignature"`
	Smoke           [][]string        `yaml:"smoke"`
	Destinations    []string          `yaml:"destinations"`
	Verify          string            `yaml:"verify"`
	AllowOverwrite  bool              `yaml:"allowOverwrite"`
	Jenkins         *releaseJenkins   `yaml:"jenkins"`
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
}

// releaseReport is the release's JSON output.
type releaseReport struct {
	Image        *builder.Result       `json:"image"`
	Verify       *builder.VerifyReport `json:"verify,omitempty"`
	Smoke        []smoke               `json:"smoke,omitempty"`
	Destinations []publisher.Result    `json:"destinations"`
	Jenkins      *jenkins.Outcome      `json:"jenkins"`
	Stages       []stage               `json:"stages"`
}

// stage is one timed step of a release.
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

func loadReleaseConfig(path string) (*releaseConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--config: %w", err)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c releaseConfig
	if err := dec.Decode(&c); err != nil {
		return nil, &usageError{fmt.Errorf("%s: %w", path, err)}
	}
	if len(c.Destinations) == 0 {
		return nil, &usageError{fmt.Errorf("%s: destinations: give at least one registry repository", path)}
	}
	if c.Definition == "" {
		c.Definition = "images/python-agent"
	}
	if j := c.Jenkins; j != nil && (j.Destination < 0 || j.Destination >= len(c.Destinations)) {
		return nil, &usageError{fmt.Errorf("%s: jenkins.destination %d: there are %d destinations", path, j.Destination, len(c.Destinations))}
	}
	return &c, nil
}

func (a *app) releaseCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "release --config FILE",
		Short: "Build, verify, publish to every registry, verify there, register in Jenkins",
		Long: `Release runs the whole chain from a release file: build the definition
(in-process buildah), verify it locally, run the smoke commands in it, publish
the same bytes to every destination and verify each, then register the Jenkins
pod template pinned to image@sha256 on the chosen destination. Jenkins is only
told about an image every destination serves with the expected digest. A second
run with nothing changed builds from cache, sends no blob and reports the
template "unchanged".`,
		Example: `  JENKINS_API_TOKEN=… agentforge release --config release.yaml -o json`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadReleaseConfig(file)
			if err != nil {
				return err
			}
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			rep, err := a.release(cmd.Context(), store, cfg, buildFlags{cacheDir: defaultCacheDir(), keyServer: builder.DefaultKeyServer}, filepath.Join(defaultCacheDir(), "publish"))
			if rep != nil {
				a.emit(rep, func(w io.Writer) { printRelease(w, rep) })
			}
			return err
		},
	}
	cmd.Flags().StringVar(&file, "config", "release.yaml", "release file")
	return cmd
}

// release composes build → verify → smoke → publish (and verify) → register.
func (a *app) release(ctx context.Context, store storage.Store, cfg *releaseConfig, bf buildFlags, workDir string) (*releaseReport, error) {
	bf.set = nil
	for k, v := range cfg.Set {
		bf.set = append(bf.set, k+"="+v)
	}
	bf.sourceMirrors, bf.registryMirror, bf.skipSignature = cfg.SourceMirrors, cfg.RegistryMirrors, cfg.SkipSignature
	opts, overrides, err := bf.options(a)
	if err != nil {
		return nil, err
	}
	def, err := loadDefinition(cfg.Definition, overrides)
	if err != nil {
		return nil, err
	}
	var tmpl jenkins.Template
	var token string
	if j := cfg.Jenkins; j != nil {
		tmpl = jenkins.Template{Cloud: or(j.Cloud, "kubernetes"), Name: or(j.Template, def.Name), Label: or(j.Label, "python"),
			Namespace: j.Namespace, ServiceAccount: j.ServiceAccount, IdleMinutes: j.IdleMinutes, InstanceCap: -1,
			CPURequest: j.CPURequest, MemoryRequest: j.MemoryRequest, CPULimit: j.CPULimit, MemoryLimit: j.MemoryLimit, NodeUsageMode: j.NodeUsageMode,
			// Checked before anything is built: validated again with the real digest.
			Image: "placeholder@sha256:" + strings.Repeat("0", 64)}
		if j.InstanceCap != nil {
			tmpl.InstanceCap = *j.InstanceCap
		}
		if err := tmpl.Validate(); err != nil {
			return nil, err
		}
		if token, err = readToken(j.TokenFile); err != nil {
			return nil, err
		}
	}
	dests, err := (&pushFlags{to: cfg.Destinations}).destinations(def.Tags)
	if err != nil {
		return nil, err
	}
	opts.Store = store
	rep := &releaseReport{}
	timed := func(name string, fn func() error) error {
		start := time.Now()
		err := fn()
		st := stage{Name: name, Status: "ok", Seconds: time.Since(start).Seconds()}
		if err != nil {
			st.Status = "failed"
		}
		rep.Stages = append(rep.Stages, st)
		a.log.WithField("seconds", fmt.Sprintf("%.1f", st.Seconds)).Infof("stage %s: %s", name, st.Status)
		return err
	}
	ref := func() (types.ImageReference, error) { return builder.ParseReference(rep.Image.ID, store) }
	if err := timed("build", func() (err error) { rep.Image, err = builder.Build(ctx, def, opts); return err }); err != nil {
		return rep, err
	}
	if err := timed("verify", func() error {
		r, err := ref()
		if err != nil {
			return err
		}
		rep.Verify, err = builder.Verify(ctx, r, builder.VerifyOptions{Log: a.log})
		return err
	}); err != nil {
		return rep, err
	}
	if len(cfg.Smoke) > 0 {
		if err := timed("smoke", func() error {
			for _, argv := range cfg.Smoke {
				var out bytes.Buffer
				if err := builder.Run(ctx, store, rep.Image.ID, argv, &out, &out); err != nil {
					return fmt.Errorf("smoke %s: %w\n%s", strings.Join(argv, " "), err, out.String())
				}
				rep.Smoke = append(rep.Smoke, smoke{Command: strings.Join(argv, " "), Output: strings.TrimSpace(out.String())})
			}
			return nil
		}); err != nil {
			return rep, err
		}
	}
	var digest string
	if err := timed("publish", func() error {
		r, err := ref()
		if err != nil {
			return err
		}
		pr, err := publisher.Publish(ctx, r, dests, publisher.Options{
			Registries: a.publishRegistries(), Verify: or(cfg.Verify, publisher.VerifyFull),
			AllowOverwrite: cfg.AllowOverwrite, WorkDir: workDir, Log: a.log,
		})
		if pr != nil {
			rep.Destinations, digest = pr.Destinations, pr.Digest
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
	tmpl.Image = dests[cfg.Jenkins.Destination].Repo.Name() + "@" + digest
	err = timed("register", func() error {
		c, err := jenkins.New(ctx, jenkins.Config{URL: or(cfg.Jenkins.URL, os.Getenv("JENKINS_URL")), User: or(cfg.Jenkins.User, os.Getenv("JENKINS_USER")), Token: token, Log: a.log})
		if err != nil {
			return err
		}
		rep.Jenkins, err = c.Register(ctx, tmpl, jenkins.Options{Adopt: cfg.Jenkins.Adopt})
		return err
	})
	return rep, err
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

func printRelease(w io.Writer, r *releaseReport) {
	for _, s := range r.Stages {
		fmt.Fprintf(w, "%-8s %-6s %6.1fs\n", s.Name, s.Status, s.Seconds)
	}
	if r.Image != nil {
		fmt.Fprintf(w, "image    %s (%s)\n", strings.Join(r.Image.Names, ", "), r.Image.Digest)
	}
	for _, d := range r.Destinations {
		fmt.Fprintf(w, "pushed   %s verified=%t (%d blobs sent, %d already there)\n", d.Ref, d.Verified, d.BlobsPushed, d.BlobsSkipped)
	}
	if r.Jenkins != nil && r.Jenkins.Template != nil {
		fmt.Fprintf(w, "jenkins  %s: pod template %q -> %s\n", r.Jenkins.Status, r.Jenkins.Template.Name, r.Jenkins.Template.Image)
	}
}
