package jenkins

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

var (
	//go:embed scripts/upsert.groovy
	upsertSource string
	//go:embed scripts/read.groovy
	readSource string
	//go:embed scripts/remove.groovy
	removeSource string
	//go:embed scripts/view.groovy
	viewSource string
	//go:embed scripts/cloud.groovy
	cloudSource string

	// Every script starts from cloud.groovy; upsert and read share their
	// view of a template.
	upsertScript = splice(splice(upsertSource, viewMarker, viewSource), cloudMarker, cloudSource)
	readScript   = splice(splice(readSource, viewMarker, viewSource), cloudMarker, cloudSource)
	removeScript = splice(removeSource, cloudMarker, cloudSource)
)

// The lines where a script takes view.groovy and cloud.groovy. Their ends
// are left as they are (a checkout with CRLF line endings keeps working).
const (
	viewMarker  = "// @@VIEW@@: the shared template view (view.groovy)"
	cloudMarker = "// @@CLOUD@@: the plugin check and the cloud (cloud.groovy)"
)

// splice puts part into script in place of its marker line.
func splice(script, marker, part string) string {
	if !strings.Contains(script, marker) {
		panic("jenkins: a script lacks its line " + marker)
	}
	return strings.Replace(script, marker, part, 1)
}

// Options tune Register and Remove.
type Options struct {
	// DryRun computes what would change and changes nothing.
	DryRun bool
	// Adopt lets agentforge take over (or remove) a template it did not create.
	Adopt bool
	// ScriptConsole registers through the script console even where
	// configuration-as-code manages the clouds (its next reload removes
	// the template); without it Register refuses there (Error reason
	// casc-managed).
	ScriptConsole bool
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
	// File is the configuration-as-code or Helm values file written (or
	// that would be), for UpdateCascFile and UpdateHelmValues.
	File string `json:"file,omitempty"`
	// Reloaded says Jenkins reloaded its configuration-as-code afterwards.
	Reloaded bool `json:"reloaded,omitempty"`
}

// FieldDiff is one field that differs.
type FieldDiff struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// payload renders the fixed script with the request as base64 JSON in
// place of the literal '@@PAYLOAD@@'. Base64 has no quote or backslash,
// so it cannot leave a string literal. Groovy refuses a literal of more
// than 65,535 characters ("String too long", the class file's constant
// limit), which a pod YAML of 48 KB would reach: the payload goes as a
// list of literals of at most payloadChunk characters, joined.
func payload(script string, req any) (string, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding.EncodeToString(data)
	var parts []string
	for len(enc) > payloadChunk {
		parts = append(parts, "'"+enc[:payloadChunk]+"'")
		enc = enc[payloadChunk:]
	}
	parts = append(parts, "'"+enc+"'")
	return strings.Replace(script, "'@@PAYLOAD@@'", "["+strings.Join(parts, ", ")+"].join()", 1), nil
}

// payloadChunk is the longest string literal payload writes.
const payloadChunk = 60000

// Register creates or updates t in its cloud, then reads it back and checks
// every field. Running it again with the same template changes nothing and
// reports "unchanged".
func (c *Client) Register(ctx context.Context, t Template, opts Options) (_ *Outcome, err error) {
	defer func() { err = c.scrub(err) }()
	script, err := upsertRequest(t, opts)
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
	back, err := c.Confirm(ctx, t)
	if err != nil {
		return out, err
	}
	if r.After != nil && r.After.ID != back.State.ID {
		return out, fmt.Errorf("%s: template id changed between write (%s) and read-back (%s)", op, r.After.ID, back.State.ID)
	}
	out.Template, out.Position = &back.State, back.Position
	return out, nil
}

// upsertRequest is the upsert script with t and opts as its payload.
func upsertRequest(t Template, opts Options) (string, error) {
	r0, err := t.Resolve()
	if err != nil {
		return "", err
	}
	req := struct {
		Template
		Adopt         bool `json:"adopt"`
		DryRun        bool `json:"dryRun"`
		ScriptConsole bool `json:"scriptConsole"`
	}{r0, opts.Adopt, opts.DryRun, opts.ScriptConsole}
	return payload(upsertScript, req)
}

// Confirm reads t's template back from Jenkins (a second, read-only
// script) and compares every field agentforge manages with t.
func (c *Client) Confirm(ctx context.Context, t Template) (_ *Found, err error) {
	defer func() { err = c.scrub(err) }()
	op := fmt.Sprintf("read back pod template %q in cloud %q", t.Name, t.Cloud)
	back, err := c.Read(ctx, t.Cloud, t.Name)
	if err != nil {
		return nil, err
	}
	if back == nil {
		return nil, fmt.Errorf("%s: the template is not there", op)
	}
	want := t.State()
	want.ID = back.State.ID
	if d := diff(&want, &back.State); len(d) > 0 {
		return back, fmt.Errorf("%s: Jenkins holds something else than asked: %v", op, d)
	}
	return back, nil
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
	// Only a name Register takes can name a template agentforge made or
	// adopted; any other (empty, padded) would be reported unchanged.
	var problems, fields []string
	validateCloudAndName(cloud, name, func(field, format string, args ...any) {
		problems, fields = append(problems, fmt.Sprintf(format, args...)), append(fields, field)
	})
	if len(problems) > 0 {
		return nil, &InputError{Msg: "remove pod template: " + strings.Join(problems, "; "), Fields: fields}
	}
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
	case "casc-managed":
		e.Hint = "configuration-as-code manages this controller's clouds (" + strings.Join(r.Sources, ", ") + " declare jenkins.clouds): its next reload or restart rebuilds them from that YAML and removes a template added by script; put the template in that YAML instead (or register by script anyway, knowing it will not last)"
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
		// Numbers stay as written (json.Number): through float64, an
		// id past 2^53 would change and a large one print as 2.1e+09.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		dec.Decode(&m)
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
		case map[string]any:
			var parts []string
			for k, x := range v {
				parts = append(parts, k+"="+fmt.Sprint(x))
			}
			sort.Strings(parts)
			return strings.Join(parts, ", ")
		}
		return fmt.Sprint(v)
	}
	for _, k := range []string{"name", "label", "image", "namespace", "serviceAccount", "idleMinutes", "instanceCap", "nodeUsageMode", "workingDir", "cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit", "privileged", "emptyDirs",
		"imagePullSecrets", "nodeSelector", "env", "yaml", "yamlMergeStrategy", "inheritFrom", "runAsUser", "runAsGroup", "managed"} {
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
