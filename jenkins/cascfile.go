package jenkins

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/agentforge/agentforge/images/fileedit"
	"gopkg.in/yaml.v3"
)

// UpdateCascFile merges t into the configuration-as-code YAML file at path
// (MergeCasc) and writes it back, atomically and with its mode kept, when
// something changed and not opts.DryRun. A missing file is created.
func UpdateCascFile(path string, t Template, opts Options) (*Outcome, error) {
	return updateFile(path, t, opts, MergeCasc)
}

// RegisterCasc is the configuration-as-code route of Register: it merges
// t into the JCasC file at path (UpdateCascFile), asks Jenkins to reload
// configuration as code (ReloadCasc) and reads the template back,
// comparing every field (Confirm). The file must be one of the
// controller's JCasC sources (CASC_JENKINS_CONFIG). Reading back needs the
// script console: without it the read-back is skipped, with a warning.
// When the file did not change and Jenkins already holds the template as
// asked, nothing is reloaded: a reload re-applies the controller's whole
// configuration (reverting its UI edits), which a run that changes
// nothing must not do.
func (c *Client) RegisterCasc(ctx context.Context, path string, t Template, opts Options) (*Outcome, error) {
	out, err := UpdateCascFile(path, t, opts)
	if err != nil || opts.DryRun {
		return out, err
	}
	out.JenkinsVersion = c.Version
	if out.Status == "unchanged" {
		if back, err := c.Confirm(ctx, t); err == nil {
			out.Template, out.Position = &back.State, back.Position
			return out, nil
		}
	}
	if err := c.ReloadCasc(ctx); err != nil {
		return out, err
	}
	out.Reloaded = true
	back, err := c.Confirm(ctx, t)
	var je *Error
	switch {
	case errors.As(err, &je) && (je.Reason == "forbidden" || je.Reason == "script-console"):
		out.Warnings = append(out.Warnings, "configuration as code reloaded, but the template was not read back: "+err.Error())
		return out, nil
	case err != nil:
		return out, fmt.Errorf("after the configuration-as-code reload (is %s one of the controller's sources?): %w", path, err)
	}
	out.Template, out.Position = &back.State, back.Position
	return out, nil
}

// UpdateHelmValues merges t into a values file of the jenkins Helm chart
// (MergeHelmValues) and writes it back like UpdateCascFile.
func UpdateHelmValues(path string, t Template, opts Options) (*Outcome, error) {
	return updateFile(path, t, opts, MergeHelmValues)
}

// updateFile merges t into the file at path with merge and writes it back
// (fileedit: whole or not at all, never over a concurrent registration's
// change); a dry run, or a file that would not change, is not written.
func updateFile(path string, t Template, opts Options, merge func([]byte, Template, Options) ([]byte, *Outcome, error)) (*Outcome, error) {
	var res *Outcome
	read := false
	_, err := fileedit.Edit(path, func(data []byte, _ bool) ([]byte, error) {
		read = true
		out, r, err := merge(data, t, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		res = r
		if opts.DryRun {
			return data, nil
		}
		return out, nil
	})
	if !read {
		// A file that cannot be read (or locked): the path given is wrong.
		return nil, &InputError{Msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	res.File = path
	return res, nil
}

// HelmValues renders t as values of the jenkins Helm chart: an entry of
// agent.podTemplates, which the chart adds to its kubernetes cloud
// (controller.cloudName) when controller.JCasC.defaultConfig is true
// (charts/jenkins/values.yaml, agent.podTemplates).
func HelmValues(t Template) (string, error) {
	out, _, err := MergeHelmValues(nil, t, Options{})
	if err != nil {
		return "", err
	}
	return "# jenkins Helm chart values (controller.JCasC.defaultConfig: true): merge into your values file\n# (agentforge register --helm-values-file FILE does).\n" + string(out), nil
}

// helmKeyRE is what the chart allows as an agent.podTemplates key.
var helmKeyRE = regexp.MustCompile(`[^a-z0-9-]+`)

// MergeHelmValues merges t into a jenkins chart values document: the key
// agent.podTemplates.<name> holds a YAML list of templates as text (the
// chart runs it through tpl and puts it under its cloud's templates); the
// template of that name in it is created or updated field by field, as in
// MergeCasc, with "{{" escaped for tpl and "${" for JCasC. Anchors, aliases
// and << merge keys on the way (agent, agent.podTemplates, the value, the
// template in its text) are refused as in MergeCasc.
func MergeHelmValues(doc []byte, t Template, opts Options) ([]byte, *Outcome, error) {
	return mergeDoc(doc, t, "Helm values", "agent", "podTemplates", yaml.MappingNode, func(r Template, refs *yamlRefs, pts *yaml.Node) (*Outcome, error) {
		return mergeHelmTemplates(pts, refs, r, opts)
	})
}

// helmKeyOf is the agent.podTemplates key for the template name: the key
// whose text already holds a template of that name, wherever an admin
// put it (the chart adds every value's templates, in key order, and a
// second python-agent under another key would hide or be hidden by it),
// else one made from the name.
func helmKeyOf(pts *yaml.Node, name string) string {
	named := regexp.MustCompile(`(?m)^[\t ]*(?:-[\t ]+)?name:[\t ]*["']?` + regexp.QuoteMeta(name) + `["']?[\t ]*$`)
	for i := 0; i+1 < len(pts.Content); i += 2 {
		k, v := pts.Content[i], pts.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			continue
		}
		var list []struct {
			Name string `yaml:"name"`
		}
		if err := yaml.Unmarshal([]byte(v.Value), &list); err != nil {
			// Text with tpl actions ({{ .Values… }}) is not YAML until
			// the chart renders it: a line naming the template is enough
			// to take this key (whose merge then asks for a hand edit).
			if named.MatchString(v.Value) {
				return k.Value
			}
			continue
		}
		for _, t := range list {
			if t.Name == name {
				return k.Value
			}
		}
	}
	key := strings.Trim(helmKeyRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if key == "" {
		key = "agentforge"
	}
	return key
}

// mergeHelmTemplates merges r into the agent.podTemplates mapping. The
// value agentforge writes and, in its text, the template updated must be
// written out in full (see yamlRefs).
func mergeHelmTemplates(pts *yaml.Node, refs *yamlRefs, r Template, opts Options) (*Outcome, error) {
	key := helmKeyOf(pts, r.Name)
	list := &yaml.Node{Kind: yaml.SequenceNode}
	inner := newYAMLRefs(list, "Helm values: agent.podTemplates."+key)
	if v := mapValue(pts, key); v != nil {
		if err := refs.plain(v, "agent.podTemplates."+key); err != nil {
			return nil, err
		}
		if v.Kind != yaml.ScalarNode {
			return nil, &InputError{Msg: fmt.Sprintf("Helm values: agent.podTemplates.%s is not a string (the chart wants a YAML list as text)", key)}
		}
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(v.Value), &n); err != nil {
			return nil, &InputError{Msg: fmt.Sprintf("Helm values: agent.podTemplates.%s is not plain YAML (Helm template actions in it?): %v; edit it by hand", key, err)}
		}
		if len(n.Content) > 0 {
			if n.Content[0].Kind != yaml.SequenceNode {
				return nil, &InputError{Msg: fmt.Sprintf("Helm values: agent.podTemplates.%s is not a list of templates", key)}
			}
			list = n.Content[0]
		}
		inner = newYAMLRefs(&n, fmt.Sprintf("Helm values: agent.podTemplates.%s (line %d), in its text", key, v.Line))
	}
	holder := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{plain("templates"), list}}
	out, err := mergeTemplates(holder, inner, r, opts, helmText, "merge into Helm values")
	if err != nil {
		return nil, err
	}
	if r.Cloud != "kubernetes" {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the chart puts agent.podTemplates into its own cloud (controller.cloudName, default kubernetes), not necessarily %q", r.Cloud))
	}
	text := encodeDoc(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{list}}, nil)
	setKey(pts, key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: text, Style: yaml.LiteralStyle})
	// The chart's own values.yaml says "podTemplates: {}": a flow mapping
	// cannot hold a literal block, and the template would be written as
	// one quoted line of escaped newlines.
	pts.Style &^= yaml.FlowStyle
	return out, nil
}
