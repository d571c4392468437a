package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"

	"github.com/agentforge/agentforge/jenkins"
	"github.com/spf13/cobra"
)

// registerFlags are the flags of "register": the template itself is a
// jenkins.Template the flags fill directly; the rest says where it goes.
type registerFlags struct {
	url, user, tokenFile, caFile string
	timeout                      time.Duration
	tmpl                         jenkins.Template
	node                         jenkins.Node
	nodeName                     string
	adopt, dryRun                bool
	remove, casc                 bool
	podmanStorage                string
	requireSignature             string
	pullSecrets                  []string
	nodeSelector, env            []string
	yamlFile, arch               string
	cascFile, helmFile           string
	cascReload, helm             bool
	scriptConsole                bool
}

func (a *app) registerCommand() *cobra.Command {
	var f registerFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Upsert a Jenkins Kubernetes pod template pinned by digest (or an inbound node)",
		Long: `Register creates or updates a pod template in a Jenkins Kubernetes cloud, with
the image as its "jnlp" container, pinned by digest. Two routes:

Script console (the default): it connects with gojenkins and posts one fixed
Groovy script to /scriptText (Overall/Administer), carrying the template as
data; it then reads the template back and compares every field. Running it
again with the same values changes nothing ("unchanged"). Templates agentforge
did not create are left alone unless --adopt. Where configuration-as-code
manages the clouds (its sources declare jenkins.clouds: the jenkins Helm
chart's default), a template added by script is removed at the next reload
or restart, so register refuses there (exit 4) unless --script-console.

Configuration as code: --casc-file FILE merges the template into the JCasC
YAML file that declares the kubernetes cloud (--cloud) under jenkins.clouds
(everything else in the file stays; a second run leaves the file byte for
byte as it was). A file that does not declare that cloud is refused (exit
2): JCasC joins the clouds lists of all its files, so a cloud added to
another file would be a second cloud of that name hiding the first; --casc
prints an entry to start such a file from. YAML anchors, aliases and <<
merge keys on the way to the template (jenkins.clouds, the cloud entry, its
templates, the template updated) are refused too, naming the line: a change
there would show wherever the anchor is used; write that part out in full.
--casc-reload then asks Jenkins to reload it (POST
/configuration-as-code/reload, Overall/Manage) and reads the template back;
when neither the file nor Jenkins' template would change, nothing is reloaded.
--casc prints the YAML instead. --helm-values prints the
jenkins Helm chart's agent.podTemplates form, --helm-values-file FILE merges
it into a values file (the chart needs controller.JCasC.defaultConfig:
true). Pick this route on any controller set up by configuration as code.

Updates are field by field: agentforge sets the fields it owns and keeps
what an admin added (environment variables, probes, sidecars, volumes,
annotations, pull secrets, node selectors). The optional fields
(--image-pull-secret, --node-selector, --env, --yaml-file, --yaml-merge,
--inherit-from, --run-as-user, --run-as-group, --fs-group) are owned key by
key once given (recorded in the annotation agentforge.io/owns): leaving one
out later removes what agentforge set, and only that.

--podman lets the agent run rootless podman, with an emptyDir on the node's
disk at --podman-storage (podman's storage for the agent user; agentforge
owns a template's disk-backed emptyDir volumes, other volumes are kept):
  --podman / --podman privileged   the jnlp container privileged (Pod
                                   Security's baseline level refuses it)
  --podman unprivileged            capabilities: drop ALL, add SETUID and
                                   SETGID; allowPrivilegeEscalation: true;
                                   seccompProfile: Unconfined (the settings
                                   measured to work; the plugin models none
                                   of them, so they go in the raw pod YAML)
  --user-namespace                 also hostUsers: false (the pod's own user
                                   namespace, where the cluster supports it)
--fs-group also goes in the raw YAML (the plugin has no field for it); a
--yaml-file is merged with these (containers by name).

--arch ARCH registers the template for one architecture of a multi-platform
image: NAME-ARCH, each label with -ARCH, node selector kubernetes.io/arch=ARCH.
For an index, register the plain template (any node of an architecture the
index has pulls its own platform) and one per architecture for jobs that need
one; a single-architecture image needs --node-selector kubernetes.io/arch=ARCH.

The API token comes from $JENKINS_API_TOKEN or --jenkins-token-file, never from
a flag value. --jenkins-url and --jenkins-user default to $JENKINS_URL and
$JENKINS_USER (Jenkins sets JENKINS_URL in every build). --node NAME registers
a permanent inbound agent with the label instead.

--require-signature PUB (a cosign public key) first verifies, on the registry
Jenkins pulls from (the --image reference, which must be pinned by digest),
that the image carries a cosign signature by that key for exactly that digest
(and that its SBOM attestation, if one is attached, verifies); otherwise it
refuses with exit 3 and Jenkins is not contacted.`,
		Example: `  JENKINS_API_TOKEN=… agentforge register --jenkins-user ci-bot \
      --template python-agent --label python \
      --image registry.example/agents/python@sha256:… --memory-request 1Gi \
      --image-pull-secret registry-pull --env PIP_INDEX_URL=https://pypi.mirror.example/simple
  agentforge register --dry-run …      # show the difference, change nothing
  agentforge register --remove --template python-agent
  agentforge register --podman unprivileged --user-namespace …
  agentforge register --arch arm64 …   # python-agent-arm64, label python-arm64, arm64 nodes
  agentforge register --casc-file /var/jenkins_home/casc_configs/jenkins.yaml --casc-reload …   # the file declaring jenkins.clouds
  agentforge register --helm-values --template python-agent --label python --image …@sha256:…
  agentforge register --require-signature cosign.pub --image registry.example/agents/python@sha256:… …`,
		Args: func(cmd *cobra.Command, a []string) error {
			// --podman takes its mode after "=" or, as written in the
			// help, as the next word.
			if len(a) == 1 && cmd.Flags().Changed("podman") && f.tmpl.Podman == jenkins.PodmanPrivileged &&
				(a[0] == string(jenkins.PodmanPrivileged) || a[0] == string(jenkins.PodmanUnprivileged)) {
				f.tmpl.Podman = jenkins.PodmanMode(a[0])
				return nil
			}
			return args(cobra.NoArgs)(cmd, a)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("podman-storage") {
				f.tmpl.PodmanStorage = &f.podmanStorage
			}
			return a.runRegister(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "jenkins-url", os.Getenv("JENKINS_URL"), "Jenkins URL ($JENKINS_URL)")
	fl.StringVar(&f.user, "jenkins-user", os.Getenv("JENKINS_USER"), "Jenkins user ($JENKINS_USER)")
	fl.StringVar(&f.tokenFile, "jenkins-token-file", "", "file holding the API token (default: $JENKINS_API_TOKEN)")
	fl.StringVar(&f.caFile, "jenkins-ca-file", "", "PEM file of CA certificates trusted for Jenkins besides the system's (a controller behind a private CA)")
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
	fl.StringArrayVar(&f.pullSecrets, "image-pull-secret", nil, "Secret (kubernetes.io/dockerconfigjson) in the pods' namespace to pull the image with (repeatable)")
	fl.StringArrayVar(&f.nodeSelector, "node-selector", nil, "KEY=VALUE node label the pods must land on, e.g. kubernetes.io/arch=arm64 (repeatable)")
	fl.StringArrayVar(&f.env, "env", nil, "KEY=VALUE environment variable of the jnlp container (repeatable)")
	fl.StringVar(&f.yamlFile, "yaml-file", "", "raw pod YAML merged under the template's fields (for what the plugin does not model)")
	fl.StringVar(&f.tmpl.YAMLMergeStrategy, "yaml-merge", "", "how the YAML combines with --inherit-from parents' YAML: merge or override (the plugin's default)")
	fl.StringVar(&f.tmpl.InheritFrom, "inherit-from", "", "parent pod templates, separated by spaces")
	fl.Var(optInt64{&f.tmpl.RunAsUser}, "run-as-user", "the pods' user id (securityContext.runAsUser)")
	fl.Var(optInt64{&f.tmpl.RunAsGroup}, "run-as-group", "the pods' group id (securityContext.runAsGroup)")
	fl.Var(optInt64{&f.tmpl.FSGroup}, "fs-group", "the pods' fsGroup (securityContext.fsGroup, through the raw YAML)")
	fl.Var(&f.tmpl.Podman, "podman", "let the agent run rootless podman: privileged or unprivileged (see above)")
	fl.Lookup("podman").NoOptDefVal = string(jenkins.PodmanPrivileged)
	fl.StringVar(&f.podmanStorage, "podman-storage", jenkins.PodmanStorage, "with --podman: mount path of the emptyDir for podman's storage (\"\": no volume)")
	fl.BoolVar(&f.tmpl.UserNamespace, "user-namespace", false, "give the pod its own user namespace (hostUsers: false), where the cluster supports it")
	fl.StringVar(&f.arch, "arch", "", "register the template for one architecture: NAME-ARCH, LABEL-ARCH, kubernetes.io/arch=ARCH")
	fl.BoolVar(&f.adopt, "adopt", false, "take over (or remove) a template of that name that agentforge did not create")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would change and change nothing")
	fl.BoolVar(&f.remove, "remove", false, "remove the template (only one agentforge manages, unless --adopt), or with --node the node")
	fl.BoolVar(&f.casc, "casc", false, "print the configuration-as-code YAML instead of registering")
	fl.StringVar(&f.cascFile, "casc-file", "", "merge the template into this configuration-as-code YAML file, the one declaring the cloud, instead of using the script console")
	fl.BoolVar(&f.cascReload, "casc-reload", false, "with --casc-file: then have Jenkins reload configuration as code, and read the template back")
	fl.BoolVar(&f.helm, "helm-values", false, "print the jenkins Helm chart's agent.podTemplates values instead of registering")
	fl.StringVar(&f.helmFile, "helm-values-file", "", "merge the template into this jenkins Helm chart values file")
	fl.BoolVar(&f.scriptConsole, "script-console", false, "register by script even where configuration as code manages the clouds (its next reload removes the template)")
	fl.StringVar(&f.nodeName, "node", "", "register a permanent inbound (JNLP) agent of this name instead of a pod template")
	fl.StringVar(&f.node.RemoteFS, "remote-fs", "/home/jenkins/agent", "with --node: the agent's root directory")
	fl.IntVar(&f.node.Executors, "executors", 1, "with --node: number of executors")
	fl.StringVar(&f.node.Description, "description", "", "with --node: node description")
	fl.StringVar(&f.requireSignature, "require-signature", "", "refuse (exit 3) unless --image carries a cosign signature by this public key on its registry")
	return cmd
}

// optInt64 is an integer flag that can be left unset.
type optInt64 struct{ p **int64 }

func (o optInt64) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	*o.p = &v
	return nil
}

func (o optInt64) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.FormatInt(**o.p, 10)
}

func (o optInt64) Type() string { return "int" }

// template finishes the template from the flags that are not its fields.
func (f *registerFlags) template() (jenkins.Template, error) {
	t := f.tmpl
	t.ImagePullSecrets = f.pullSecrets
	var err error
	if t.NodeSelector, err = keyValues("--node-selector", f.nodeSelector); err != nil {
		return t, err
	}
	if t.Env, err = keyValues("--env", f.env); err != nil {
		return t, err
	}
	if f.yamlFile != "" {
		data, err := os.ReadFile(f.yamlFile)
		if err != nil {
			return t, errs.Inputf("--yaml-file: %w", err)
		}
		t.YAML = string(data)
	}
	if f.arch != "" {
		return t.ForArch(f.arch)
	}
	return t, nil
}

// keyValues parses repeated KEY=VALUE flags; a key given twice is refused.
func keyValues(flag string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, errs.Inputf("%s %q: want KEY=VALUE", flag, kv)
		}
		if _, dup := m[k]; dup {
			return nil, errs.Inputf("%s: %s is given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

func (a *app) runRegister(ctx context.Context, f *registerFlags) error {
	// docker:// names the transport, not the image: Kubernetes pulls
	// host/repo@sha256:….
	f.tmpl.Image = strings.TrimPrefix(f.tmpl.Image, "docker://")
	tmpl, err := f.template()
	if err != nil {
		return err
	}
	var routes []string
	for name, on := range map[string]bool{"--casc": f.casc, "--casc-file": f.cascFile != "", "--helm-values": f.helm, "--helm-values-file": f.helmFile != "", "--node": f.nodeName != ""} {
		if on {
			routes = append(routes, name)
		}
	}
	slices.Sort(routes)
	switch {
	case len(routes) > 1:
		return errs.Inputf("%s: pick one", strings.Join(routes, " and "))
	case f.cascReload && f.cascFile == "":
		return errs.Inputf("--casc-reload goes with --casc-file")
	case f.remove && len(routes) > 0 && f.nodeName == "":
		return errs.Inputf("--remove works through the script console; take the template out of %s by hand", routes[0])
	case f.scriptConsole && len(routes) > 0:
		return errs.Inputf("--script-console goes with registering through the script console, not %s", routes[0])
	case f.nodeName != "" && templateOnly(f, tmpl) != "":
		return errs.Inputf("%s sets up a pod template; it does not apply to --node", templateOnly(f, tmpl))
	}
	if f.requireSignature != "" {
		if f.remove || f.nodeName != "" {
			return errs.Inputf("--require-signature checks --image: it does not apply to --remove or --node")
		}
		ref, err := canonical(tmpl.Image)
		if err != nil {
			return fmt.Errorf("--require-signature: --image: %w", err)
		}
		// What is registered is exactly what was verified: the repository
		// (its name in full, as every node resolves it alike) by digest
		// (sign.ParseRef drops docker:// and a tag next to the digest).
		verified := ref.String()
		if _, err := a.checkSignature(ctx, ref, f.requireSignature, sign.SBOMIfPresent); err != nil {
			return fmt.Errorf("--require-signature: not registering %s: %w", verified, err)
		}
		a.log.WithField("image", verified).Info("signature verified")
		if tmpl.Image != verified {
			a.log.Infof("registering the image as verified: %s (given as %s)", verified, tmpl.Image)
		}
		tmpl.Image = verified
	}
	opts := jenkins.Options{DryRun: f.dryRun, Adopt: f.adopt, ScriptConsole: f.scriptConsole}
	switch {
	case f.casc || f.helm:
		render, key := jenkins.CascFragment, "casc"
		if f.helm {
			render, key = jenkins.HelmValues, "helmValues"
		}
		y, err := render(tmpl)
		if err != nil {
			return err
		}
		a.emit(map[string]string{key: y}, func(w io.Writer) { fmt.Fprint(w, y) })
		return nil
	case f.helmFile != "":
		out, err := jenkins.UpdateHelmValues(f.helmFile, tmpl, opts)
		if err != nil {
			return err
		}
		a.emit(out, func(w io.Writer) { printRegister(w, f, tmpl, out) })
		return nil
	case f.cascFile != "" && !f.cascReload:
		out, err := jenkins.UpdateCascFile(f.cascFile, tmpl, opts)
		if err != nil {
			return err
		}
		a.emit(out, func(w io.Writer) { printRegister(w, f, tmpl, out) })
		return nil
	}
	if f.nodeName == "" && !f.remove {
		if _, err := tmpl.Resolve(); err != nil {
			return err
		}
	}
	if f.timeout <= 0 {
		// context.WithTimeout would expire at once, and the run would
		// report Jenkins as not answering.
		return errs.Inputf("--timeout %s: want a positive duration (e.g. 60s)", f.timeout)
	}
	token, err := readToken(f.tokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := jenkins.New(ctx, jenkins.Config{URL: f.url, User: f.user, Token: token, CAFile: f.caFile, Timeout: f.timeout, Log: a.log, Secrets: a.secrets})
	if err != nil {
		return err
	}
	var out *jenkins.Outcome
	switch {
	case f.cascFile != "":
		out, err = c.RegisterCasc(ctx, f.cascFile, tmpl, opts)
	case f.nodeName != "" && f.remove:
		out, err = c.RemoveNode(ctx, f.nodeName, opts)
	case f.nodeName != "":
		f.node.Name, f.node.Label = f.nodeName, tmpl.Label
		out, err = c.RegisterNode(ctx, f.node, opts)
	case f.remove:
		out, err = c.Remove(ctx, tmpl.Cloud, tmpl.Name, opts)
	default:
		out, err = c.Register(ctx, tmpl, opts)
	}
	if err != nil {
		// Past the deadline, whichever timer fired first: the HTTP
		// client's own (its error is no context error) may beat the
		// context's, whose goroutine a loaded machine runs late.
		if dl, _ := ctx.Deadline(); errors.Is(ctx.Err(), context.DeadlineExceeded) || !time.Now().Before(dl) {
			return fmt.Errorf("jenkins did not answer within --timeout %s (nothing was confirmed; run again to converge): %w", f.timeout, err)
		}
		return err
	}
	a.emit(out, func(w io.Writer) { printRegister(w, f, tmpl, out) })
	return nil
}

// templateOnly names a pod-template flag that was given, or "".
func templateOnly(f *registerFlags, t jenkins.Template) string {
	switch {
	case t.Podman != "":
		return "--podman"
	case len(t.ImagePullSecrets) > 0:
		return "--image-pull-secret"
	case len(t.NodeSelector) > 0 || f.arch != "":
		return "--node-selector/--arch"
	case len(t.Env) > 0:
		return "--env"
	case t.YAML != "":
		return "--yaml-file"
	case t.RunAsUser != nil || t.RunAsGroup != nil || t.FSGroup != nil:
		return "--run-as-user/--run-as-group/--fs-group"
	}
	return ""
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

func printRegister(w io.Writer, f *registerFlags, tmpl jenkins.Template, o *jenkins.Outcome) {
	what := fmt.Sprintf("pod template %q in cloud %q", tmpl.Name, tmpl.Cloud)
	switch {
	case f.nodeName != "":
		what = fmt.Sprintf("node %q", f.nodeName)
	case o.File != "":
		what = fmt.Sprintf("pod template %q in %s", tmpl.Name, o.File)
	}
	version := ""
	if o.JenkinsVersion != "" {
		version = " (Jenkins " + o.JenkinsVersion + ")"
	}
	fmt.Fprintf(w, "%s: %s%s\n", what, o.Status, version)
	if o.Reloaded {
		fmt.Fprintf(w, "  configuration as code reloaded; the template read back as asked\n")
	}
	if t := o.Template; t != nil {
		fmt.Fprintf(w, "  id     %s (position %d)\n  label  %s\n  image  %s\n", t.ID, o.Position, t.Label, t.Image)
		if t.Privileged {
			fmt.Fprintf(w, "  privileged jnlp container\n")
		}
		for _, p := range t.EmptyDirs {
			fmt.Fprintf(w, "  emptyDir %s\n", p)
		}
		for _, s := range t.ImagePullSecrets {
			fmt.Fprintf(w, "  image pull secret %s\n", s)
		}
		for _, m := range []struct {
			what string
			kv   map[string]string
		}{{"node selector", t.NodeSelector}, {"env", t.Env}} {
			keys := make([]string, 0, len(m.kv))
			for k := range m.kv {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "  %s %s=%s\n", m.what, k, m.kv[k])
			}
		}
	}
	for _, d := range o.Diff {
		fmt.Fprintf(w, "  %-14s %q -> %q\n", d.Field, d.Before, d.After)
	}
	for _, warn := range o.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}
