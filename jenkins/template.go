package jenkins

import (
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Template is the pod template agentforge manages: a "jnlp" container
// running Image, which must be pinned by digest unless AllowTag. It is the
// one shape of a template: register's flags fill it, a release file's
// jenkins section embeds it (the yaml keys), and TemplateState reports it
// back as Jenkins holds it.
//
// Fields agentforge always sets (name to node usage mode, resources,
// Privileged, the disk-backed EmptyDirs) are written on every run. The
// others (ImagePullSecrets, NodeSelector, Env, YAML, YAMLMergeStrategy,
// InheritFrom, RunAsUser, RunAsGroup) are written when given and owned
// from then on, key by key: a later run removes an environment variable,
// pull secret or selector agentforge set and is no longer asked for, and
// leaves the ones an admin added alone. What agentforge owns is recorded
// in the template's annotation agentforge.io/owns.
type Template struct {
	Cloud          string `json:"cloud" yaml:"cloud"`
	Name           string `json:"name" yaml:"template"`
	Label          string `json:"label" yaml:"label"`
	Image          string `json:"image" yaml:"-"`
	Namespace      string `json:"namespace" yaml:"namespace"`
	ServiceAccount string `json:"serviceAccount" yaml:"serviceAccount"`
	IdleMinutes    int    `json:"idleMinutes" yaml:"idleMinutes"`
	// InstanceCap < 0 means unlimited.
	InstanceCap   int    `json:"instanceCap" yaml:"instanceCap"`
	CPURequest    string `json:"cpuRequest" yaml:"cpuRequest"`
	MemoryRequest string `json:"memoryRequest" yaml:"memoryRequest"`
	CPULimit      string `json:"cpuLimit" yaml:"cpuLimit"`
	MemoryLimit   string `json:"memoryLimit" yaml:"memoryLimit"`
	// NodeUsageMode is EXCLUSIVE (only jobs asking for the label) or NORMAL.
	NodeUsageMode string `json:"nodeUsageMode" yaml:"nodeUsageMode"`
	// ImagePullSecrets name Secrets (kubernetes.io/dockerconfigjson) in
	// the pods' namespace that the kubelet pulls the image with
	// (PodTemplate.setImagePullSecrets).
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty" yaml:"imagePullSecrets"`
	// NodeSelector places the pods (PodTemplate.setNodeSelector), e.g.
	// kubernetes.io/arch: arm64 for an image of one architecture.
	NodeSelector map[string]string `json:"nodeSelector,omitempty" yaml:"nodeSelector"`
	// Env are environment variables of the jnlp container
	// (ContainerTemplate.setEnvVars, KeyValueEnvVar).
	Env map[string]string `json:"env,omitempty" yaml:"env"`
	// YAML is raw pod YAML merged under the template's fields
	// (PodTemplate.setYaml), for what the plugin does not model.
	YAML string `json:"yaml,omitempty" yaml:"yaml"`
	// YAMLMergeStrategy is how YAML combines with the parents' YAML
	// (InheritFrom): "merge" or "override" (the plugin's default).
	YAMLMergeStrategy string `json:"yamlMergeStrategy,omitempty" yaml:"yamlMergeStrategy"`
	// InheritFrom names parent templates, separated by spaces.
	InheritFrom string `json:"inheritFrom,omitempty" yaml:"inheritFrom"`
	// RunAsUser and RunAsGroup are the pod's securityContext
	// (PodTemplate.setRunAsUser/setRunAsGroup).
	RunAsUser  *int64 `json:"runAsUser,omitempty" yaml:"runAsUser"`
	RunAsGroup *int64 `json:"runAsGroup,omitempty" yaml:"runAsGroup"`
	// FSGroup is the pod's securityContext.fsGroup, which the plugin does
	// not model: it goes into the raw YAML.
	FSGroup *int64 `json:"fsGroup,omitempty" yaml:"fsGroup"`
	// Podman sets the pod up for rootless podman in the agent: an emptyDir
	// at PodmanStorage and either a privileged jnlp container or the
	// measured non-privileged securityContext (see PodmanUnprivilegedYAML).
	Podman PodmanMode `json:"podman,omitempty" yaml:"podman"`
	// PodmanStorage is the emptyDir's mount path; nil means the default
	// PodmanStorage, "" no volume.
	PodmanStorage *string `json:"podmanStorage,omitempty" yaml:"podmanStorage"`
	// UserNamespace gives the pod its own user namespace (hostUsers:
	// false, in the raw YAML), where the cluster supports it (Kubernetes
	// 1.33+ by default, a runtime and kernel with idmapped mounts).
	UserNamespace bool `json:"userNamespace,omitempty" yaml:"userNamespace"`
	// Privileged runs the agent container privileged
	// (ContainerTemplate.setPrivileged).
	Privileged bool `json:"privileged" yaml:"privileged"`
	// EmptyDirs are the mount paths of emptyDir volumes on the node's disk
	// (EmptyDirVolume), mounted in every container of the pod: podman's
	// storage, for one. agentforge owns a template's disk-backed emptyDir
	// volumes: those not listed here are removed; other volumes are kept.
	EmptyDirs []string `json:"emptyDirs" yaml:"emptyDirs"`
	// AllowTag accepts an image reference without a digest.
	AllowTag bool `json:"-" yaml:"-"`
}

// PodmanMode says how the pod lets the agent run rootless podman: "" (not
// at all), PodmanPrivileged or PodmanUnprivileged. In a release file,
// podman: true means privileged.
type PodmanMode string

// Podman modes. Privileged is refused by Pod Security's baseline level;
// unprivileged is what the README measured to work without it (it still
// needs seccomp Unconfined, which baseline refuses too: the namespace must
// allow it).
const (
	PodmanPrivileged   PodmanMode = "privileged"
	PodmanUnprivileged PodmanMode = "unprivileged"
)

// Set parses a flag value (pflag.Value).
func (m *PodmanMode) Set(s string) error {
	switch PodmanMode(s) {
	case "", PodmanPrivileged, PodmanUnprivileged:
		*m = PodmanMode(s)
		return nil
	case "none":
		*m = ""
		return nil
	}
	return &InputError{Msg: fmt.Sprintf("podman %q: want privileged or unprivileged", s), Fields: []string{"podman"}}
}

func (m *PodmanMode) String() string { return string(*m) }

// Type names the flag value's type (pflag.Value).
func (m *PodmanMode) Type() string { return "mode" }

// UnmarshalYAML reads true (privileged), false (none) or a mode name.
func (m *PodmanMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		*m = ""
		if b {
			*m = PodmanPrivileged
		}
		return nil
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	return m.Set(s)
}

// Node usage modes (Node.Mode): Exclusive takes only jobs that ask for the
// template's label; Normal takes any job.
const (
	Exclusive = "EXCLUSIVE"
	Normal    = "NORMAL"
)

// PodmanStorage is where rootless podman keeps its images and containers
// for the agent user (containers/storage's rootless graph root under
// /home/jenkins): the place for an emptyDir when the agent runs podman.
const PodmanStorage = "/home/jenkins/.local/share/containers"

// AgentWorkingDir is the agent container's working directory, where the
// plugin mounts the workspace volume.
const AgentWorkingDir = "/home/jenkins/agent"

// ArchLabel is the node label the kubelet sets to the node's architecture
// (GOARCH names: amd64, arm64, ...).
const ArchLabel = "kubernetes.io/arch"

// TemplateState is a template as Jenkins holds it: the fields agentforge
// manages, resolved (see Template.Resolve) and normalised (empty strings
// for unset values, instanceCap 2147483647 for unlimited), with the
// optional fields limited to what agentforge owns.
type TemplateState struct {
	ID string `json:"id"`
	Template
	WorkingDir string `json:"workingDir"`
	Managed    bool   `json:"managed"`
}

// imageNameRE is a repository name: an optional registry host (a domain
// name or [IPv6], with an optional port) and lower-case path components.
const imageNameRE = `(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?/)?` +
	`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*`

var (
	// digestRefRE and tagRefRE are image references as Kubernetes pulls
	// them (the distribution reference grammar: [host[:port]/]path[:tag],
	// pinned with @sha256:<hex>); a transport prefix (docker://, oci:) is
	// not part of one.
	digestRefRE = regexp.MustCompile(`^` + imageNameRE + `(?::[\w][\w.-]{0,127})?@sha256:[0-9a-f]{64}$`)
	tagRefRE    = regexp.MustCompile(`^` + imageNameRE + `(?::[\w][\w.-]{0,127})?$`)
	// labelRE is labels separated by single spaces, without the control
	// characters Java's trim() drops (\v among them, which \s does not
	// match): Jenkins would store another label, and every run would
	// find it changed.
	labelRE    = regexp.MustCompile(`^[^\s\x00-\x20\x7f-\x9f]+(?: [^\s\x00-\x20\x7f-\x9f]+)*$`)
	quantityRE = regexp.MustCompile(`^$|^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)
	k8sNameRE  = regexp.MustCompile(`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// dnsSubdomainRE is a Kubernetes object name (RFC 1123 subdomain).
	dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// labelNameRE and labelValueRE are a label key's name part and a
	// label value (at most 63 characters each).
	labelNameRE  = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	// envNameRE is a container environment variable name.
	envNameRE = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	archRE    = regexp.MustCompile(`^[a-z0-9]+$`)
	// mountPathRE is an absolute path of plain segments: no spaces, quotes,
	// colons or "$" (the plugin substitutes ${VAR} in mount paths).
	mountPathRE = regexp.MustCompile(`^(/[A-Za-z0-9._@+=,~-]+)+$`)
)

// maxYAML bounds the raw pod YAML: it is stored in Jenkins' config.xml
// and sent with every pod.
const maxYAML = 256 << 10

// Validate checks a template before anything is sent. Values that Jenkins
// would take but that make no sense, or that it would store differently,
// are refused here with the field named.
func (t *Template) Validate() error {
	var problems []string
	notPinned := false
	var fields []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
		if !slices.Contains(fields, field) {
			fields = append(fields, field)
		}
	}
	validateCloudAndName(t.Cloud, t.Name, bad)
	if !utf8.ValidString(t.Label) || !labelRE.MatchString(t.Label) {
		bad("label", "label %q: want one or more labels separated by single spaces", t.Label)
	}
	switch {
	case digestRefRE.MatchString(t.Image):
	case t.AllowTag && tagRefRE.MatchString(t.Image):
	case tagRefRE.MatchString(t.Image):
		bad("image", "image %q is not pinned by digest (want repo@sha256:<64 hex>)", t.Image)
		notPinned = true
	default:
		bad("image", "image %q is not an image reference Kubernetes can pull (host/repo@sha256:<64 hex>; no transport such as docker://)", t.Image)
	}
	if !k8sNameRE.MatchString(t.Namespace) {
		bad("namespace", "namespace %q is not a Kubernetes namespace name", t.Namespace)
	}
	if t.ServiceAccount != "" && !dnsSubdomainRE.MatchString(t.ServiceAccount) {
		bad("service-account", "service-account %q is not a Kubernetes name", t.ServiceAccount)
	}
	for name, q := range map[string]string{"cpu-request": t.CPURequest, "memory-request": t.MemoryRequest, "cpu-limit": t.CPULimit, "memory-limit": t.MemoryLimit} {
		if !quantityRE.MatchString(q) {
			bad(name, "%s %q is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 2Gi)", name, q)
		}
	}
	// Both are Java ints in the plugin: a larger value would wrap on the way.
	if t.IdleMinutes < 0 || t.IdleMinutes > math.MaxInt32 {
		bad("idle-minutes", "idle-minutes %d: want 0 to %d (a Java int)", t.IdleMinutes, math.MaxInt32)
	}
	if t.InstanceCap < math.MinInt32 || t.InstanceCap > math.MaxInt32 {
		bad("instance-cap", "instance-cap %d: want -1 (unlimited) to %d (a Java int)", t.InstanceCap, math.MaxInt32)
	}
	seen := map[string]bool{}
	for _, p := range t.EmptyDirs {
		switch {
		case !mountPathRE.MatchString(p) || path.Clean(p) != p:
			bad("emptyDir", "emptyDir mount path %q: want a clean absolute path of letters, digits and . _ - @ + = , ~", p)
		case p == AgentWorkingDir:
			bad("emptyDir", "emptyDir mount path %q is the agent's working directory, where the workspace volume goes", p)
		case seen[p]:
			bad("emptyDir", "emptyDir mount path %q is given twice", p)
		}
		seen[p] = true
	}
	switch t.NodeUsageMode {
	case "":
		t.NodeUsageMode = Exclusive
	case Exclusive, Normal:
	default:
		bad("node-usage-mode", "node-usage-mode %q: want EXCLUSIVE or NORMAL", t.NodeUsageMode)
	}
	t.validateOptional(bad)
	if len(problems) > 0 {
		return &InputError{Msg: "pod template: " + strings.Join(problems, "; "), Fields: fields, notPinned: notPinned}
	}
	return nil
}

// validateCloudAndName checks the cloud's and the template's names, which
// Register and Remove both take.
func validateCloudAndName(cloud, name string, bad func(field, format string, args ...any)) {
	// A string that is not UTF-8 reaches Jenkins as another one (JSON
	// puts U+FFFD for each bad byte): what is registered would not be
	// what was asked for.
	switch {
	case !utf8.ValidString(cloud):
		bad("cloud", "cloud %q is not UTF-8 text", cloud)
	case strings.TrimSpace(cloud) == "":
		bad("cloud", "cloud is empty")
	}
	switch {
	case !utf8.ValidString(name):
		bad("template", "template %q is not UTF-8 text", name)
	case strings.TrimSpace(name) == "":
		bad("template", "template %q: want a name", name)
	case strings.IndexFunc(name, isControl) >= 0:
		bad("template", "template %q: want a name without control characters (tabs, newlines)", name)
	case javaTrim(name) != name:
		// PodTemplate.setName stores Util.fixEmptyAndTrim(name): a padded
		// name would be stored trimmed, so no run would find its template
		// again and every run would add one.
		bad("template", "template %q: leading or trailing spaces (Jenkins would store %q, and the next run would not find it)", name, javaTrim(name))
	}
}

// validateOptional checks the fields agentforge sets only when given.
func (t *Template) validateOptional(bad func(field, format string, args ...any)) {
	seen := map[string]bool{}
	for _, s := range t.ImagePullSecrets {
		switch {
		case len(s) > 253 || !dnsSubdomainRE.MatchString(s):
			bad("image-pull-secret", "image-pull-secret %q is not a Kubernetes Secret name", s)
		case seen[s]:
			bad("image-pull-secret", "image-pull-secret %q is given twice", s)
		}
		seen[s] = true
	}
	for k, v := range t.NodeSelector {
		if !labelKeyOK(k) {
			bad("node-selector", "node-selector key %q is not a Kubernetes label key ([prefix/]name, name up to 63 letters, digits, - _ .)", k)
		}
		// The plugin splits "k=v,k=v" and skips a pair with an empty
		// value (PodTemplateBuilder.getNodeSelectorMap).
		if len(v) > 63 || !labelValueRE.MatchString(v) {
			bad("node-selector", "node-selector %s=%q: want a label value (1 to 63 letters, digits, - _ .)", k, v)
		}
	}
	for k, v := range t.Env {
		if !envNameRE.MatchString(k) {
			bad("env", "env %q is not an environment variable name (letters, digits, - _ ., not starting with a digit)", k)
		}
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			bad("env", "env %s: the value is not UTF-8 text without NUL bytes", k)
		}
	}
	if t.YAML != "" {
		if err := checkPodYAML(t.YAML); err != nil {
			bad("yaml", "yaml: %v", err)
		}
	}
	switch t.YAMLMergeStrategy {
	case "", "merge", "override":
	default:
		bad("yaml-merge", "yaml-merge %q: want merge or override", t.YAMLMergeStrategy)
	}
	if t.InheritFrom != "" && (!utf8.ValidString(t.InheritFrom) || !labelRE.MatchString(t.InheritFrom)) {
		bad("inherit-from", "inherit-from %q: want template names separated by single spaces", t.InheritFrom)
	}
	// Kubernetes takes user and group ids from 0 to 2147483647
	// (IsValidUserID, IsValidGroupID); the plugin would silently drop a
	// value it cannot parse.
	for _, id := range []struct {
		field string
		v     *int64
	}{{"run-as-user", t.RunAsUser}, {"run-as-group", t.RunAsGroup}, {"fs-group", t.FSGroup}} {
		if id.v != nil && (*id.v < 0 || *id.v > math.MaxInt32) {
			bad(id.field, "%s %d: want 0 to %d", id.field, *id.v, math.MaxInt32)
		}
	}
	switch t.Podman {
	case "":
		if t.PodmanStorage != nil {
			bad("podman-storage", "podman-storage goes with podman")
		}
	case PodmanPrivileged:
		if t.UserNamespace {
			bad("user-namespace", "user-namespace: Kubernetes refuses a privileged container in a pod with its own user namespace; use podman unprivileged")
		}
	case PodmanUnprivileged:
		if t.Privileged {
			bad("podman", "podman unprivileged and a privileged container contradict each other")
		}
	default:
		bad("podman", "podman %q: want privileged or unprivileged", t.Podman)
	}
	if t.UserNamespace && t.Privileged {
		bad("user-namespace", "user-namespace: Kubernetes refuses a privileged container in a pod with its own user namespace")
	}
	if t.PodmanStorage != nil && *t.PodmanStorage != "" {
		p := *t.PodmanStorage
		if !mountPathRE.MatchString(p) || path.Clean(p) != p || p == AgentWorkingDir {
			bad("podman-storage", "podman-storage %q: want a clean absolute path of letters, digits and . _ - @ + = , ~ other than the agent's working directory", p)
		}
	}
}

// labelKeyOK reports a Kubernetes label key: [DNS subdomain prefix/]name.
func labelKeyOK(k string) bool {
	prefix, name, found := strings.Cut(k, "/")
	if !found {
		prefix, name = "", k
	}
	if found && (prefix == "" || len(prefix) > 253 || !dnsSubdomainRE.MatchString(prefix)) {
		return false
	}
	return len(name) <= 63 && labelNameRE.MatchString(name)
}

// ErrNotPinned is a template image given by tag where a digest is required
// (errors.Is finds it in Validate's error).
var ErrNotPinned = errors.New("image not pinned by digest")

// isControl reports an ASCII or C1 control character.
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// javaTrim is Java's String.trim(), which Jenkins' Util.fixEmptyAndTrim
// uses: it removes every char <= U+0020 at both ends and nothing else.
func javaTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

// Resolve validates t and returns it as Jenkins will hold it: the podman
// mode, FSGroup and UserNamespace folded into Privileged, EmptyDirs and the
// raw YAML; instanceCap 2147483647 for unlimited; the node usage mode
// named; pull secrets sorted; empty maps nil.
func (t Template) Resolve() (Template, error) {
	if err := t.Validate(); err != nil {
		return t, err
	}
	r := t
	r.EmptyDirs = append([]string(nil), t.EmptyDirs...)
	if r.InstanceCap < 0 {
		r.InstanceCap = math.MaxInt32
	}
	storage := PodmanStorage
	if t.PodmanStorage != nil {
		storage = *t.PodmanStorage
	}
	var overlays []string
	switch t.Podman {
	case PodmanPrivileged:
		r.Privileged = true
	case PodmanUnprivileged:
		overlays = append(overlays, PodmanUnprivilegedYAML)
	}
	if t.Podman != "" && storage != "" && !slices.Contains(r.EmptyDirs, storage) {
		r.EmptyDirs = append(r.EmptyDirs, storage)
	}
	if t.UserNamespace {
		overlays = append(overlays, "spec:\n  hostUsers: false\n")
	}
	if t.FSGroup != nil {
		overlays = append(overlays, fmt.Sprintf("spec:\n  securityContext:\n    fsGroup: %d\n", *t.FSGroup))
	}
	if len(overlays) > 0 {
		y, err := mergePodYAML(t.YAML, overlays...)
		if err != nil {
			return t, &InputError{Msg: "pod template: yaml: " + err.Error(), Fields: []string{"yaml"}}
		}
		r.YAML = y
	}
	r.Podman, r.PodmanStorage, r.FSGroup, r.UserNamespace = "", nil, nil, false
	if len(r.ImagePullSecrets) == 0 {
		r.ImagePullSecrets = nil
	} else {
		r.ImagePullSecrets = slices.Clone(r.ImagePullSecrets)
		sort.Strings(r.ImagePullSecrets)
	}
	if len(r.NodeSelector) == 0 {
		r.NodeSelector = nil
	}
	if len(r.Env) == 0 {
		r.Env = nil
	}
	return r, nil
}

// State is the TemplateState Jenkins should hold after registering t.
func (t Template) State() TemplateState {
	r, err := t.Resolve()
	if err != nil {
		// Register resolves first; a template that does not resolve has
		// no state to compare with. Keep what can be shown.
		r = t
	}
	r.AllowTag = false
	return TemplateState{Template: r, WorkingDir: AgentWorkingDir, Managed: true}
}

// ForArch returns the template for one architecture of a multi-platform
// image: NAME-ARCH, each label with -ARCH, and the node selector
// kubernetes.io/arch=ARCH, so that jobs asking for python-arm64 get an
// arm64 node. The image stays the same: a node pulls its own platform
// from the index.
func (t Template) ForArch(arch string) (Template, error) {
	if !archRE.MatchString(arch) {
		return t, &InputError{Msg: fmt.Sprintf("arch %q: want an architecture as Kubernetes names it (amd64, arm64, ...)", arch), Fields: []string{"arch"}}
	}
	r := t
	r.Name = t.Name + "-" + arch
	labels := strings.Fields(t.Label)
	for i := range labels {
		labels[i] += "-" + arch
	}
	r.Label = strings.Join(labels, " ")
	r.NodeSelector = map[string]string{}
	for k, v := range t.NodeSelector {
		r.NodeSelector[k] = v
	}
	r.NodeSelector[ArchLabel] = arch
	return r, nil
}
