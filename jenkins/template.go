package jenkins

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strings"
)

var (
	//go:embed scripts/upsert.groovy
	upsertScript string
	//go:embed scripts/read.groovy
	readScript string
	//go:embed scripts/remove.groovy
	removeScript string
)

// Template is the pod template agentforge manages: one "jnlp" container
// running Image, which must be pinned by digest unless AllowTag.
type Template struct {
	Cloud          string `json:"cloud"`
	Name           string `json:"name"`
	Label          string `json:"label"`
	Image          string `json:"image"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	IdleMinutes    int    `json:"idleMinutes"`
	// InstanceCap < 0 means unlimited.
	InstanceCap   int    `json:"instanceCap"`
	CPURequest    string `json:"cpuRequest"`
	MemoryRequest string `json:"memoryRequest"`
	CPULimit      string `json:"cpuLimit"`
	MemoryLimit   string `json:"memoryLimit"`
	// NodeUsageMode is EXCLUSIVE (only jobs asking for the label) or NORMAL.
	NodeUsageMode string `json:"nodeUsageMode"`
	// Privileged runs the agent container privileged
	// (ContainerTemplate.setPrivileged): rootless podman in the pod needs it.
	Privileged bool `json:"privileged"`
	// EmptyDirs are the mount paths of emptyDir volumes on the node's disk
	// (EmptyDirVolume), mounted in every container of the pod: podman's
	// storage, for one. agentforge owns a template's disk-backed emptyDir
	// volumes: those not listed here are removed; other volumes are kept.
	EmptyDirs []string `json:"emptyDirs"`
	// AllowTag accepts an image reference without a digest.
	AllowTag bool `json:"-"`
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

// TemplateState is a template as Jenkins holds it, the fields agentforge
// manages, normalised (empty strings for unset values, instanceCap
// 2147483647 for unlimited).
type TemplateState struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Label          string `json:"label"`
	Image          string `json:"image"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	IdleMinutes    int    `json:"idleMinutes"`
	InstanceCap    int    `json:"instanceCap"`
	NodeUsageMode  string `json:"nodeUsageMode"`
	WorkingDir     string `json:"workingDir"`
	CPURequest     string `json:"cpuRequest"`
	MemoryRequest  string `json:"memoryRequest"`
	CPULimit       string `json:"cpuLimit"`
	MemoryLimit    string `json:"memoryLimit"`
	Privileged     bool   `json:"privileged"`
	// EmptyDirs lists the disk-backed emptyDir volumes, in order.
	EmptyDirs []string `json:"emptyDirs"`
	Managed   bool     `json:"managed"`
}

var (
	digestRefRE = regexp.MustCompile(`^[^\s@]+@sha256:[0-9a-f]{64}$`)
	tagRefRE    = regexp.MustCompile(`^[^\s@]+$`)
	labelRE     = regexp.MustCompile(`^[^\s]+(?: [^\s]+)*$`)
	quantityRE  = regexp.MustCompile(`^$|^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)
	k8sNameRE   = regexp.MustCompile(`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// mountPathRE is an absolute path of plain segments: no spaces, quotes,
	// colons or "$" (the plugin substitutes ${VAR} in mount paths).
	mountPathRE = regexp.MustCompile(`^(/[A-Za-z0-9._@+=,~-]+)+$`)
)

// Validate checks a template before anything is sent. Values that Jenkins
// would take but that make no sense are refused here with the field named.
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
	if strings.TrimSpace(t.Cloud) == "" {
		bad("cloud", "cloud is empty")
	}
	switch {
	case strings.TrimSpace(t.Name) == "":
		bad("template", "template %q: want a name", t.Name)
	case strings.IndexFunc(t.Name, isControl) >= 0:
		bad("template", "template %q: want a name without control characters (tabs, newlines)", t.Name)
	case javaTrim(t.Name) != t.Name:
		// PodTemplate.setName stores Util.fixEmptyAndTrim(name): a padded
		// name would be stored trimmed, so no run would find its template
		// again and every run would add one.
		bad("template", "template %q: leading or trailing spaces (Jenkins would store %q, and the next run would not find it)", t.Name, javaTrim(t.Name))
	}
	if !labelRE.MatchString(t.Label) {
		bad("label", "label %q: want one or more labels separated by single spaces", t.Label)
	}
	switch {
	case digestRefRE.MatchString(t.Image):
	case t.AllowTag && tagRefRE.MatchString(t.Image):
	case tagRefRE.MatchString(t.Image):
		bad("image", "image %q is not pinned by digest (want repo@sha256:<64 hex>)", t.Image)
		notPinned = true
	default:
		bad("image", "image %q is not an image reference", t.Image)
	}
	if !k8sNameRE.MatchString(t.Namespace) {
		bad("namespace", "namespace %q is not a Kubernetes namespace name", t.Namespace)
	}
	if !k8sNameRE.MatchString(t.ServiceAccount) && !regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`).MatchString(t.ServiceAccount) {
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
	if len(problems) > 0 {
		return &InputError{Msg: "pod template: " + strings.Join(problems, "; "), Fields: fields, notPinned: notPinned}
	}
	return nil
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

// State is the TemplateState Jenkins should hold after registering t.
func (t Template) State() TemplateState {
	capacity := t.InstanceCap
	if capacity < 0 {
		capacity = math.MaxInt32
	}
	mode := t.NodeUsageMode
	if mode == "" {
		mode = Exclusive
	}
	return TemplateState{
		Name: t.Name, Label: t.Label, Image: t.Image, Namespace: t.Namespace, ServiceAccount: t.ServiceAccount,
		IdleMinutes: t.IdleMinutes, InstanceCap: capacity, NodeUsageMode: mode, WorkingDir: AgentWorkingDir,
		CPURequest: t.CPURequest, MemoryRequest: t.MemoryRequest, CPULimit: t.CPULimit, MemoryLimit: t.MemoryLimit,
		Privileged: t.Privileged, EmptyDirs: append([]string{}, t.EmptyDirs...), Managed: true,
	}
}

// Options tune Register and Remove.
type Options struct {
	// DryRun computes what would change and changes nothing.
	DryRun bool
	// Adopt lets agentforge take over (or remove) a template it did not create.
	Adopt bool
}

// Outcome is what Register or Remove did.
type Outcome struct {
	// Status: created, updated, unchanged, removed, or with DryRun
	// would-create, would-update, would-remove.
	Status         string         `json:"status"`
	JenkinsVersion string         `json:"jenkinsVersion"`
	Template       *TemplateState `json:"template,omitempty"`
	Before         *TemplateState `json:"before,omitempty"`
	// Diff lists the fields that differ between Before and Template.
	Diff     []FieldDiff `json:"diff,omitempty"`
	Position int         `json:"position"`
	Warnings []string    `json:"warnings,omitempty"`
}

// FieldDiff is one field that differs.
type FieldDiff struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// payload renders the fixed script with the request as base64 JSON. Base64
// has no quote or backslash, so it cannot leave the string literal.
func payload(script string, req any) (string, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	return strings.Replace(script, "@@PAYLOAD@@", base64.StdEncoding.EncodeToString(data), 1), nil
}

// Register creates or updates t in its cloud, then reads it back and checks
// every field. Running it again with the same template changes nothing and
// reports "unchanged".
func (c *Client) Register(ctx context.Context, t Template, opts Options) (_ *Outcome, err error) {
	defer func() { err = c.scrub(err) }()
	if err := t.Validate(); err != nil {
		return nil, err
	}
	req := struct {
		Template
		Adopt  bool `json:"adopt"`
		DryRun bool `json:"dryRun"`
	}{t, opts.Adopt, opts.DryRun}
	script, err := payload(upsertScript, req)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("register pod template %q in cloud %q", t.Name, t.Cloud)
	r, err := c.run(ctx, op, script)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Status: r.Status, JenkinsVersion: c.Version, Template: r.After, Before: r.Before, Warnings: r.Warnings}
	out.Diff = diff(r.Before, r.After)
	for i, w := range r.Warnings {
		out.Warnings[i] = c.secrets.String(w)
		c.warn(w)
	}
	if opts.DryRun {
		return out, nil
	}
	// Read back with a second script and compare field by field.
	back, err := c.Read(ctx, t.Cloud, t.Name)
	if err != nil {
		return out, err
	}
	if back == nil {
		return out, fmt.Errorf("%s: Jenkins reported %s but the template is not there on read-back", op, r.Status)
	}
	want := t.State()
	want.ID = back.State.ID
	if d := diff(&want, &back.State); len(d) > 0 {
		return out, fmt.Errorf("%s: read-back differs from the request: %v", op, d)
	}
	if r.After != nil && r.After.ID != back.State.ID {
		return out, fmt.Errorf("%s: template id changed between write (%s) and read-back (%s)", op, r.After.ID, back.State.ID)
	}
	out.Template, out.Position = &back.State, back.Position
	return out, nil
}

// Found is a template read from Jenkins.
type Found struct {
	State    TemplateState
	Position int
}

// Read returns the named template of cloud, or nil when there is none.
func (c *Client) Read(ctx context.Context, cloud, name string) (_ *Found, err error) {
	defer func() { err = c.scrub(err) }()
	script, err := payload(readScript, map[string]string{"cloud": cloud, "name": name})
	if err != nil {
		return nil, err
	}
	r, err := c.run(ctx, fmt.Sprintf("read pod template %q in cloud %q", name, cloud), script)
	if err != nil {
		return nil, err
	}
	if r.Status == "absent" || r.After == nil {
		return nil, nil
	}
	return &Found{State: *r.After, Position: r.Position}, nil
}

// Remove deletes the named template if agentforge manages it (or Adopt).
func (c *Client) Remove(ctx context.Context, cloud, name string, opts Options) (_ *Outcome, err error) {
	defer func() { err = c.scrub(err) }()
	script, err := payload(removeScript, map[string]any{"cloud": cloud, "name": name, "adopt": opts.Adopt, "dryRun": opts.DryRun})
	if err != nil {
		return nil, err
	}
	r, err := c.run(ctx, fmt.Sprintf("remove pod template %q from cloud %q", name, cloud), script)
	if err != nil {
		return nil, err
	}
	return &Outcome{Status: r.Status, JenkinsVersion: c.Version}, nil
}

// run posts a script and turns its result line into an outcome or an error.
func (c *Client) run(ctx context.Context, op, script string) (*result, error) {
	out, err := c.script(ctx, op, script)
	if err != nil {
		return nil, err
	}
	r, err := parseResult(op, out)
	if err != nil {
		return nil, c.scrub(err)
	}
	if r.Status != "error" {
		return r, nil
	}
	e := &Error{Op: op, Reason: r.Reason}
	switch r.Reason {
	case "no-such-cloud":
		e.Hint = fmt.Sprintf("there is no cloud of that name (clouds: %s); create it under Manage Jenkins > Clouds or name another", strings.Join(r.Clouds, ", "))
	case "not-kubernetes":
		e.Hint = "that cloud is a " + r.Kind + ", not a Kubernetes cloud"
	case "not-managed":
		e.Hint = "a template of that name exists (id " + r.ID + ") that agentforge did not create (adopt it to take it over)"
	case "plugin-too-old":
		installed := "an older version"
		if plugins, err := c.plugins(ctx); err == nil && plugins["kubernetes"] != "" {
			installed = plugins["kubernetes"]
		}
		e.Hint = "the Kubernetes plugin is " + installed + "; agentforge needs 1.27.2 or later (pod template ids, the PodTemplate(String id) constructor): update the kubernetes plugin under Manage Jenkins > Plugins"
	}
	return nil, e
}

// diff lists the fields that differ between two states (ID ignored).
func diff(before, after *TemplateState) []FieldDiff {
	if after == nil {
		return nil
	}
	var b, a map[string]any
	toMap := func(s *TemplateState) map[string]any {
		m := map[string]any{}
		if s == nil {
			return m
		}
		data, _ := json.Marshal(s)
		json.Unmarshal(data, &m)
		return m
	}
	b, a = toMap(before), toMap(after)
	var out []FieldDiff
	str := func(v any) string {
		switch v := v.(type) {
		case nil:
			return ""
		case []any:
			var parts []string
			for _, p := range v {
				parts = append(parts, fmt.Sprint(p))
			}
			return strings.Join(parts, ", ")
		}
		return fmt.Sprint(v)
	}
	for _, k := range []string{"name", "label", "image", "namespace", "serviceAccount", "idleMinutes", "instanceCap", "nodeUsageMode", "workingDir", "cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit", "privileged", "emptyDirs", "managed"} {
		bv, av := str(b[k]), str(a[k])
		if before == nil {
			bv = ""
		}
		if bv != av {
			out = append(out, FieldDiff{Field: k, Before: bv, After: av})
		}
	}
	return out
}
