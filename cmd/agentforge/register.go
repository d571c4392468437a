package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"

	"github.com/agentforge/agentforge/jenkins"
	"github.com/spf13/cobra"
)

// registerFlags are the flags of "register".
type registerFlags struct {
	url, user, tokenFile string
	timeout              time.Duration
	tmpl                 jenkins.Template
	node                 jenkins.Node
	nodeName             string
	adopt, dryRun        bool
	remove, casc         bool
	podman               bool
	podmanStorage        string
	podmanStorageSet     bool
	requireSignature     string
}

func (a *app) registerCommand() *cobra.Command {
	var f registerFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Upsert a Jenkins Kubernetes pod template pinned by digest (or an inbound node)",
		Long: `Register creates or updates a pod template in a Jenkins Kubernetes cloud, with
the image as its "jnlp" container, pinned by digest. It connects with gojenkins
and posts one fixed Groovy script to the script console (Overall/Administer),
carrying the template as data; it then reads the template back and compares
every field. Running it again with the same values changes nothing
("unchanged"). Templates agentforge did not create are left alone unless
--adopt.

The API token comes from $JENKINS_API_TOKEN or --jenkins-token-file, never from
a flag value. --jenkins-url and --jenkins-user default to $JENKINS_URL and
$JENKINS_USER (Jenkins sets JENKINS_URL in every build).

--podman gives the pod what rootless podman in the agent needs: the jnlp
container privileged (the capabilities SETUID/SETGID alone are not enough:
newuidmap is refused), and an emptyDir volume on the node's disk at
--podman-storage (podman's storage for the agent user). agentforge owns a
template's disk-backed emptyDir volumes: a run without --podman removes the
one it added; other volumes (hostPath, PVC, memory-backed emptyDir) are kept.

--casc prints the equivalent configuration-as-code fragment instead (for
controllers managed by JCasC, where script changes are wiped on reload).
--node NAME registers a permanent inbound agent with the label instead.

--require-signature PUB (a cosign public key) first verifies, on the registry
Jenkins pulls from (the --image reference, which must be pinned by digest),
that the image carries a cosign signature by that key for exactly that digest
(and that its SBOM attestation, if one is attached, verifies); otherwise it
refuses with exit 3 and Jenkins is not contacted.`,
		Example: `  JENKINS_API_TOKEN=… agentforge register --jenkins-user ci-bot \
      --template python-agent --label python \
      --image registry.example/agents/python@sha256:… --memory-request 1Gi
  agentforge register --dry-run …      # show the difference, change nothing
  agentforge register --remove --template python-agent
  agentforge register --podman …       # privileged, emptyDir for podman's storage
  agentforge register --casc --template python-agent --label python --image …@sha256:…
  agentforge register --require-signature cosign.pub --image registry.example/agents/python@sha256:… …`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.podmanStorageSet = cmd.Flags().Changed("podman-storage")
			return a.runRegister(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "jenkins-url", os.Getenv("JENKINS_URL"), "Jenkins URL ($JENKINS_URL)")
	fl.StringVar(&f.user, "jenkins-user", os.Getenv("JENKINS_USER"), "Jenkins user ($JENKINS_USER)")
	fl.StringVar(&f.tokenFile, "jenkins-token-file", "", "file holding the API token (default: $JENKINS_API_TOKEN)")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "time limit for the whole registration")
	fl.StringVar(&f.tmpl.Cloud, "cloud", "kubernetes", "name of the Kubernetes cloud")
	fl.StringVar(&f.tmpl.Name, "template", "python-agent", "pod template name; a name with leading or trailing spaces is refused (Jenkins trims it, so the template could not be found again)")
	fl.StringVar(&f.tmpl.Label, "label", "python", "label jobs use to ask for the agent")
	fl.StringVar(&f.tmpl.Image, "image", "", "agent image, pinned: host/repo@sha256:<64 hex>")
	fl.BoolVar(&f.tmpl.AllowTag, "allow-tag", false, "accept an image reference without a digest")
	fl.StringVar(&f.tmpl.Namespace, "namespace", "", "Kubernetes namespace for the agent pods (default: the cloud's)")
	fl.StringVar(&f.tmpl.ServiceAccount, "service-account", "", "service account of the agent pods")
	fl.IntVar(&f.tmpl.IdleMinutes, "idle-minutes", 0, "keep an idle agent pod this many minutes (0 to 2147483647)")
	fl.IntVar(&f.tmpl.InstanceCap, "instance-cap", -1, "most agent pods at once, up to 2147483647 (-1: unlimited)")
	fl.StringVar(&f.tmpl.CPURequest, "cpu-request", "", "CPU request of the jnlp container (e.g. 500m)")
	fl.StringVar(&f.tmpl.MemoryRequest, "memory-request", "", "memory request (e.g. 1Gi)")
	fl.StringVar(&f.tmpl.CPULimit, "cpu-limit", "", "CPU limit")
	fl.StringVar(&f.tmpl.MemoryLimit, "memory-limit", "", "memory limit")
	fl.StringVar(&f.tmpl.NodeUsageMode, "node-usage-mode", jenkins.Exclusive, "EXCLUSIVE (only jobs asking for the label) or NORMAL")
	fl.BoolVar(&f.podman, "podman", false, "let the agent run rootless podman: privileged jnlp container, emptyDir volume at --podman-storage")
	fl.StringVar(&f.podmanStorage, "podman-storage", jenkins.PodmanStorage, "with --podman: mount path of the emptyDir for podman's storage (\"\": no volume)")
	fl.BoolVar(&f.adopt, "adopt", false, "take over (or remove) a template of that name that agentforge did not create")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would change and change nothing")
	fl.BoolVar(&f.remove, "remove", false, "remove the template (only one agentforge manages, unless --adopt), or with --node the node")
	fl.BoolVar(&f.casc, "casc", false, "print the configuration-as-code YAML fragment instead of registering")
	fl.StringVar(&f.nodeName, "node", "", "register a permanent inbound (JNLP) agent of this name instead of a pod template")
	fl.StringVar(&f.node.RemoteFS, "remote-fs", "/home/jenkins/agent", "with --node: the agent's root directory")
	fl.IntVar(&f.node.Executors, "executors", 1, "with --node: number of executors")
	fl.StringVar(&f.node.Description, "description", "", "with --node: node description")
	fl.StringVar(&f.requireSignature, "require-signature", "", "refuse (exit 3) unless --image carries a cosign signature by this public key on its registry")
	return cmd
}

func (a *app) runRegister(ctx context.Context, f *registerFlags) error {
	switch {
	case f.podmanStorageSet && !f.podman:
		return errs.Inputf("--podman-storage goes with --podman")
	case f.podman && f.nodeName != "":
		return errs.Inputf("--podman sets up a pod template; it does not apply to --node")
	case f.podman:
		f.tmpl.Privileged = true
		if f.podmanStorage != "" {
			f.tmpl.EmptyDirs = []string{f.podmanStorage}
		}
	}
	if f.requireSignature != "" {
		if f.remove || f.nodeName != "" {
			return errs.Inputf("--require-signature checks --image: it does not apply to --remove or --node")
		}
		ref, err := canonical(f.tmpl.Image)
		if err != nil {
			return fmt.Errorf("--require-signature: --image: %w", err)
		}
		if _, err := a.checkSignature(ctx, ref, f.requireSignature, sign.SBOMIfPresent); err != nil {
			return fmt.Errorf("--require-signature: not registering %s: %w", ref, err)
		}
		a.log.WithField("image", ref.String()).Info("signature verified")
	}
	if f.casc {
		y, err := jenkins.CascFragment(f.tmpl)
		if err != nil {
			return err
		}
		a.emit(map[string]string{"casc": y}, func(w io.Writer) { fmt.Fprint(w, y) })
		return nil
	}
	if f.nodeName == "" && !f.remove {
		if err := f.tmpl.Validate(); err != nil {
			return err
		}
	}
	token, err := readToken(f.tokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := jenkins.New(ctx, jenkins.Config{URL: f.url, User: f.user, Token: token, Timeout: f.timeout, Log: a.log, Secrets: a.secrets})
	if err != nil {
		return err
	}
	opts := jenkins.Options{DryRun: f.dryRun, Adopt: f.adopt}
	var out *jenkins.Outcome
	switch {
	case f.nodeName != "" && f.remove:
		out, err = c.RemoveNode(ctx, f.nodeName, opts)
	case f.nodeName != "":
		f.node.Name, f.node.Label = f.nodeName, f.tmpl.Label
		out, err = c.RegisterNode(ctx, f.node, opts)
	case f.remove:
		out, err = c.Remove(ctx, f.tmpl.Cloud, f.tmpl.Name, opts)
	default:
		if casc, cerr := c.HasCasc(ctx); cerr == nil && casc {
			a.log.Warn("this controller runs the configuration-as-code plugin: a template registered by script is wiped when the configuration is reloaded; keep it in your JCasC YAML too (agentforge register --casc prints the fragment)")
		}
		out, err = c.Register(ctx, f.tmpl, opts)
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("jenkins did not answer within --timeout %s (nothing was confirmed; run again to converge): %w", f.timeout, err)
		}
		return err
	}
	a.emit(out, func(w io.Writer) { printRegister(w, f, out) })
	return nil
}

// readToken takes the API token from a file or $JENKINS_API_TOKEN.
func readToken(file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", errs.Inputf("--jenkins-token-file: %w", err)
		}
		if t := strings.TrimSpace(string(data)); t != "" {
			return t, nil
		}
		return "", errs.Inputf("--jenkins-token-file %s is empty", file)
	}
	if t := strings.TrimSpace(os.Getenv("JENKINS_API_TOKEN")); t != "" {
		return t, nil
	}
	return "", errs.Inputf("no Jenkins API token: set JENKINS_API_TOKEN or --jenkins-token-file")
}

func printRegister(w io.Writer, f *registerFlags, o *jenkins.Outcome) {
	what := fmt.Sprintf("pod template %q in cloud %q", f.tmpl.Name, f.tmpl.Cloud)
	if f.nodeName != "" {
		what = fmt.Sprintf("node %q", f.nodeName)
	}
	fmt.Fprintf(w, "%s: %s (Jenkins %s)\n", what, o.Status, o.JenkinsVersion)
	if t := o.Template; t != nil {
		fmt.Fprintf(w, "  id     %s (position %d)\n  label  %s\n  image  %s\n", t.ID, o.Position, t.Label, t.Image)
		if t.Privileged {
			fmt.Fprintf(w, "  privileged jnlp container\n")
		}
		for _, p := range t.EmptyDirs {
			fmt.Fprintf(w, "  emptyDir %s\n", p)
		}
	}
	for _, d := range o.Diff {
		fmt.Fprintf(w, "  %-14s %q -> %q\n", d.Field, d.Before, d.After)
	}
	for _, warn := range o.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}
