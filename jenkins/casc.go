package jenkins

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Configuration as code (JCasC). On a controller whose JCasC sources
// declare jenkins.clouds, every reload and restart rebuilds the clouds from
// the YAML (jenkins.clouds is a DescribableList that JCasC replaces; each
// template is constructed afresh through its setters): a template added by
// script disappears (jenkinsci/helm-charts#440). The template must live in
// the YAML. These functions write it there, field by field, the way the
// plugin's JCasC export writes a template (configuration-as-code-plugin
// ConfigurationAsCode.toYaml, L664-720 at 58646eb6): keys in order, strings
// double-quoted, multi-line strings as literal blocks, numbers, booleans
// and enums plain, describables under their symbols (envVar,
// emptyDirVolume, merge/override), and "${" escaped as "^${"
// (SecretSourceResolver.encode, L78-83) so that no value is resolved as a
// variable or a secret when JCasC reads it.

// ownsKey is the annotation where agentforge records the optional fields
// it set (see Template).
const (
	markKey = "agentforge.io/managed-by"
	ownsKey = "agentforge.io/owns"
)

// escaper turns a value into the text written in a YAML scalar, and back.
type escaper struct {
	out func(string) string
	in  func(string) string
}

// cascText escapes "${" for JCasC.
var cascText = escaper{
	out: func(s string) string { return strings.ReplaceAll(s, "${", "^${") },
	in:  func(s string) string { return strings.ReplaceAll(s, "^${", "${") },
}

// helmText also escapes "{{" for Helm's tpl, which the jenkins chart runs
// on each agent.podTemplates value before JCasC reads it
// (charts/jenkins/templates/_helpers.tpl, "tpl $val $"): {{`{{`}} prints
// "{{" (a raw string: no quote that YAML would escape).
var helmText = escaper{
	out: func(s string) string { return strings.ReplaceAll(cascText.out(s), "{{", "{{`{{`}}") },
	in:  func(s string) string { return cascText.in(strings.ReplaceAll(s, "{{`{{`}}", "{{")) },
}

// CascFragment renders t as a configuration-as-code YAML document with its
// kubernetes cloud and the template, for controllers managed by JCasC.
// Applying jenkins.clouds replaces the whole list: merge it into the full
// configuration (UpdateCascFile does).
func CascFragment(t Template) (string, error) {
	out, _, err := mergeCasc(nil, t, Options{}, true)
	if err != nil {
		return "", err
	}
	return "# Merge into your full configuration: applying jenkins.clouds replaces the whole list\n# (agentforge register --casc-file FILE does).\n" + string(out), nil
}

// MergeCasc merges t into a JCasC YAML document that declares the
// kubernetes cloud named t.Cloud in jenkins.clouds: the template of that
// name is created or updated field by field (what an admin added to it
// stays, as with Register), and everything else is kept. The document is
// re-encoded only when something changed: an unchanged run returns doc as
// it was, byte for byte.
//
// A document that does not declare the cloud is refused (*InputError):
// JCasC joins the jenkins.clouds lists of all its source files end to end,
// so a cloud entry added to a file next to the one that declares the cloud
// would be a second cloud of that name, and Jenkins would find one of the
// two by name, with the other's settings or templates out of sight. So is
// an anchor, alias or << merge key on the way to the template (see
// yamlRefs), naming the line.
func MergeCasc(doc []byte, t Template, opts Options) ([]byte, *Outcome, error) {
	return mergeCasc(doc, t, opts, false)
}

// mergeCasc is MergeCasc; with create, a missing cloud entry is added
// (for CascFragment, which prints a configuration to start from).
func mergeCasc(doc []byte, t Template, opts Options, create bool) ([]byte, *Outcome, error) {
	return mergeDoc(doc, t, "configuration-as-code YAML", "jenkins", "clouds", yaml.SequenceNode, func(r Template, refs *yamlRefs, clouds *yaml.Node) (*Outcome, error) {
		return mergeCascClouds(clouds, refs, r, opts, create)
	})
}

// mergeCascClouds merges r into the jenkins.clouds list; the cloud entry
// is created only with create. The entry is found as JCasC reads it
// (through aliases and merge keys), and refused when it is not written
// out in full (see yamlRefs).
func mergeCascClouds(clouds *yaml.Node, refs *yamlRefs, r Template, opts Options, create bool) (*Outcome, error) {
	var cloud *yaml.Node
	for _, c := range clouds.Content {
		entry := resolve(c)
		if entry.Kind != yaml.MappingNode || len(entry.Content) != 2 {
			continue
		}
		body := entry.Content[1]
		if n := lookup(body, "name"); n != nil && cascText.in(n.Value) == r.Cloud {
			if entry.Content[0].Value != "kubernetes" {
				return nil, &Error{Op: "merge into configuration-as-code", Reason: "not-kubernetes", Hint: fmt.Sprintf("cloud %q there is a %s cloud, not a kubernetes one", r.Cloud, entry.Content[0].Value)}
			}
			part := fmt.Sprintf("the kubernetes cloud %q", r.Cloud)
			for _, n := range []*yaml.Node{c, body} {
				if err := refs.plain(n, part); err != nil {
					return nil, err
				}
			}
			cloud = body
		}
	}
	if cloud == nil && !create {
		return nil, noCloudError(clouds, r.Cloud)
	}
	if cloud == nil {
		cloud = &yaml.Node{Kind: yaml.MappingNode}
		setKey(cloud, "name", str(r.Cloud, cascText))
		clouds.Content = append(clouds.Content, mapping("kubernetes", cloud))
	}
	return mergeTemplates(cloud, refs, r, opts, cascText, "merge into configuration-as-code")
}

// noCloudError refuses to add the cloud named name to a jenkins.clouds
// list that does not declare it (clouds has no line when openDoc created
// it: the document declares no jenkins.clouds).
func noCloudError(clouds *yaml.Node, name string) error {
	where := "the file declares no jenkins.clouds"
	if clouds.Line > 0 {
		var names []string
		for _, c := range clouds.Content {
			if c := resolve(c); c.Kind == yaml.MappingNode && len(c.Content) == 2 {
				if n := lookup(c.Content[1], "name"); n != nil && n.Kind == yaml.ScalarNode {
					names = append(names, fmt.Sprintf("%s %q", c.Content[0].Value, cascText.in(n.Value)))
				}
			}
		}
		where = fmt.Sprintf("jenkins.clouds at line %d has none", clouds.Line)
		if len(names) > 0 {
			where += " (it has " + strings.Join(names, ", ") + ")"
		}
	}
	return &InputError{
		Msg: fmt.Sprintf("configuration-as-code YAML: no kubernetes cloud named %q: %s. "+
			"Give the JCasC file that declares that cloud: JCasC joins the jenkins.clouds lists of all its files, "+
			"so a cloud added to this one would be a second cloud %q hiding the first. "+
			"If this file is to declare the cloud, add it under jenkins.clouds first (agentforge register --casc prints an entry to start from)",
			name, where, name),
		Fields: []string{"cloud"},
	}
}

// mergeTemplates creates or updates r in the mapping's templates list.
// The list and the template updated must be written out in full (see
// yamlRefs); the other templates may share nodes, as they are not changed.
func mergeTemplates(parent *yaml.Node, refs *yamlRefs, r Template, opts Options, esc escaper, op string) (*Outcome, error) {
	if err := refs.plain(mapValue(parent, "templates"), fmt.Sprintf("the templates of cloud %q", r.Cloud)); err != nil {
		return nil, err
	}
	templates, err := child(parent, "templates", yaml.SequenceNode)
	if err != nil {
		return nil, &InputError{Msg: "configuration-as-code YAML: " + err.Error()}
	}
	var tm *yaml.Node
	position := len(templates.Content)
	for i, c := range templates.Content {
		if n := lookup(c, "name"); n != nil && esc.in(n.Value) == r.Name {
			if err := refs.plainTree(c, fmt.Sprintf("the template %q", r.Name)); err != nil {
				return nil, err
			}
			tm, position = c, i
			break
		}
	}
	out := &Outcome{Position: position}
	var beforeState *TemplateState
	if tm == nil {
		tm = &yaml.Node{Kind: yaml.MappingNode}
		// A template without an id gets a new random one at every JCasC
		// apply (PodTemplate's constructor): give it a stable one.
		setKey(tm, "id", str(stableID(r.Cloud, r.Name), esc))
		templates.Content = append(templates.Content, tm)
		// An empty "templates: []" gets its first template as a block,
		// not as one line of flow mapping.
		templates.Style &^= yaml.FlowStyle
	} else {
		s := cascView(tm, esc)
		beforeState = &s
		if !s.Managed && !opts.Adopt {
			id := s.ID
			return nil, &Error{Op: op, Reason: "not-managed", Hint: "a template of that name exists (id " + id + ") that agentforge did not create (adopt it to take it over)"}
		}
	}
	applyCasc(tm, r, esc)
	after := cascView(tm, esc)
	want := r.State()
	want.ID = after.ID
	if d := diff(&want, &after); len(d) > 0 {
		return nil, fmt.Errorf("%s: the YAML written does not read back as asked: %v", op, d)
	}
	out.Template, out.Before = &after, beforeState
	out.Diff = diff(beforeState, &after)
	switch {
	case beforeState == nil:
		out.Status = "created"
	case len(out.Diff) == 0:
		out.Status = "unchanged"
	default:
		out.Status = "updated"
	}
	if opts.DryRun && out.Status != "unchanged" {
		out.Status = "would-" + strings.TrimSuffix(out.Status, "d")
	}
	return out, nil
}

// applyCasc sets agentforge's fields on a template mapping, as upsert.groovy
// does on a live template: the jnlp container is updated in place, the
// owned optional fields key by key, everything else stays.
func applyCasc(tm *yaml.Node, r Template, esc escaper) {
	prior := cascOwns(tm, esc)
	setKey(tm, "name", str(r.Name, esc))
	setKey(tm, "label", str(r.Label, esc))
	setOrDelete(tm, "namespace", r.Namespace, esc)
	setOrDelete(tm, "serviceAccount", r.ServiceAccount, esc)
	setKey(tm, "idleMinutes", num(int64(r.IdleMinutes)))
	if r.InstanceCap >= math.MaxInt32 {
		deleteKey(tm, "instanceCap")
	} else {
		setKey(tm, "instanceCap", num(int64(r.InstanceCap)))
	}
	setKey(tm, "nodeUsageMode", plain(r.NodeUsageMode))

	containers := ensure(tm, "containers", yaml.SequenceNode)
	var jnlp *yaml.Node
	for _, c := range containers.Content {
		if n := mapValue(c, "name"); n != nil && n.Value == "jnlp" {
			jnlp = c
			break
		}
	}
	if jnlp == nil {
		jnlp = &yaml.Node{Kind: yaml.MappingNode}
		setKey(jnlp, "name", str("jnlp", esc))
		containers.Content = append([]*yaml.Node{jnlp}, containers.Content...)
	}
	setKey(jnlp, "image", str(r.Image, esc))
	setKey(jnlp, "workingDir", str(AgentWorkingDir, esc))
	setOrDelete(jnlp, "resourceRequestCpu", r.CPURequest, esc)
	setOrDelete(jnlp, "resourceRequestMemory", r.MemoryRequest, esc)
	setOrDelete(jnlp, "resourceLimitCpu", r.CPULimit, esc)
	setOrDelete(jnlp, "resourceLimitMemory", r.MemoryLimit, esc)
	if r.Privileged {
		setKey(jnlp, "privileged", boolean(true))
	} else {
		deleteKey(jnlp, "privileged")
	}
	env := map[string]*yaml.Node{}
	for k, v := range r.Env {
		body := &yaml.Node{Kind: yaml.MappingNode}
		setKey(body, "key", str(k, esc))
		setKey(body, "value", str(v, esc))
		env[k] = mapping("envVar", body)
	}
	mergeOwnedList(jnlp, "envVars", env, prefixed(prior, "env:"), func(n *yaml.Node) *yaml.Node {
		if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
			return mapValue(n.Content[1], "key")
		}
		return nil
	}, esc)

	volumes := ensure(tm, "volumes", yaml.SequenceNode)
	var kept []*yaml.Node
	for _, v := range volumes.Content {
		if _, owned := ownedEmptyDir(v, esc); !owned {
			kept = append(kept, v)
		}
	}
	for _, p := range r.EmptyDirs {
		body := &yaml.Node{Kind: yaml.MappingNode}
		setKey(body, "memory", boolean(false))
		setKey(body, "mountPath", str(p, esc))
		kept = append(kept, mapping("emptyDirVolume", body))
	}
	volumes.Content = kept
	dropEmpty(tm, "volumes")

	secrets := map[string]*yaml.Node{}
	for _, name := range r.ImagePullSecrets {
		body := &yaml.Node{Kind: yaml.MappingNode}
		setKey(body, "name", str(name, esc))
		secrets[name] = body
	}
	mergeOwnedList(tm, "imagePullSecrets", secrets, prefixed(prior, "imagePullSecret:"), func(n *yaml.Node) *yaml.Node {
		return mapValue(n, "name")
	}, esc)
	if before := prefixed(prior, "nodeSelector:"); len(r.NodeSelector) > 0 || len(before) > 0 {
		cur := ""
		if n := mapValue(tm, "nodeSelector"); n != nil {
			cur = esc.in(n.Value)
		}
		setOrDelete(tm, "nodeSelector", mergeSelector(cur, r.NodeSelector, before), esc)
	}
	for _, f := range []struct {
		key, value string
	}{{"yaml", r.YAML}, {"yamlMergeStrategy", r.YAMLMergeStrategy}, {"inheritFrom", r.InheritFrom}, {"runAsUser", idText(r.RunAsUser)}, {"runAsGroup", idText(r.RunAsGroup)}} {
		switch {
		case f.value != "":
			setKey(tm, f.key, str(f.value, esc))
		case contains(prior, f.key):
			deleteKey(tm, f.key)
		}
	}

	annotations := ensure(tm, "annotations", yaml.SequenceNode)
	var anns []*yaml.Node
	ownsAt, marked := -1, false
	for _, a := range annotations.Content {
		k := mapValue(a, "key")
		switch {
		case k != nil && esc.in(k.Value) == ownsKey:
			ownsAt = len(anns)
			continue
		case k != nil && esc.in(k.Value) == markKey:
			marked = true
		}
		anns = append(anns, a)
	}
	if !marked {
		anns = append(anns, annotation(markKey, "agentforge", esc))
	}
	if owns := r.owns(); len(owns) > 0 {
		data, _ := json.Marshal(owns)
		a := annotation(ownsKey, string(data), esc)
		if ownsAt >= 0 && ownsAt <= len(anns) {
			anns = append(anns[:ownsAt], append([]*yaml.Node{a}, anns[ownsAt:]...)...)
		} else {
			anns = append(anns, a)
		}
	}
	annotations.Content = anns
}

// owns lists the optional fields r sets, as recorded in the owns annotation.
func (r Template) owns() []string {
	var o []string
	for k := range r.Env {
		o = append(o, "env:"+k)
	}
	for _, s := range r.ImagePullSecrets {
		o = append(o, "imagePullSecret:"+s)
	}
	for k := range r.NodeSelector {
		o = append(o, "nodeSelector:"+k)
	}
	for k, v := range map[string]string{"yaml": r.YAML, "yamlMergeStrategy": r.YAMLMergeStrategy, "inheritFrom": r.InheritFrom, "runAsUser": idText(r.RunAsUser), "runAsGroup": idText(r.RunAsGroup)} {
		if v != "" {
			o = append(o, k)
		}
	}
	sort.Strings(o)
	return o
}

// cascView reads a template mapping as TemplateState, the way read.groovy
// reads a live template: the optional fields only as far as agentforge
// owns them.
func cascView(tm *yaml.Node, esc escaper) TemplateState {
	get := func(n *yaml.Node, k string) string {
		if v := mapValue(n, k); v != nil && v.Kind == yaml.ScalarNode {
			return esc.in(v.Value)
		}
		return ""
	}
	var s TemplateState
	s.ID = get(tm, "id")
	s.Name, s.Label, s.Namespace, s.ServiceAccount = get(tm, "name"), get(tm, "label"), get(tm, "namespace"), get(tm, "serviceAccount")
	s.IdleMinutes, _ = strconv.Atoi(get(tm, "idleMinutes"))
	s.InstanceCap = math.MaxInt32
	if v, err := strconv.Atoi(get(tm, "instanceCap")); err == nil && v >= 0 {
		s.InstanceCap = v
	}
	s.NodeUsageMode = get(tm, "nodeUsageMode")
	if s.NodeUsageMode == "" {
		s.NodeUsageMode = Exclusive
	}
	owns := cascOwns(tm, esc)
	var jnlp *yaml.Node
	if cs := mapValue(tm, "containers"); cs != nil {
		for _, c := range cs.Content {
			if get(c, "name") == "jnlp" {
				jnlp = c
				break
			}
		}
	}
	if jnlp != nil {
		s.Image, s.WorkingDir = get(jnlp, "image"), get(jnlp, "workingDir")
		s.CPURequest, s.MemoryRequest = get(jnlp, "resourceRequestCpu"), get(jnlp, "resourceRequestMemory")
		s.CPULimit, s.MemoryLimit = get(jnlp, "resourceLimitCpu"), get(jnlp, "resourceLimitMemory")
		s.Privileged = get(jnlp, "privileged") == "true"
		if envs := mapValue(jnlp, "envVars"); envs != nil {
			for _, e := range envs.Content {
				if e.Kind != yaml.MappingNode || len(e.Content) != 2 || e.Content[0].Value != "envVar" {
					continue
				}
				if k := get(e.Content[1], "key"); contains(owns, "env:"+k) {
					if s.Env == nil {
						s.Env = map[string]string{}
					}
					s.Env[k] = get(e.Content[1], "value")
				}
			}
		}
	}
	if vs := mapValue(tm, "volumes"); vs != nil {
		for _, v := range vs.Content {
			if p, owned := ownedEmptyDir(v, esc); owned {
				s.EmptyDirs = append(s.EmptyDirs, p)
			}
		}
	}
	if ps := mapValue(tm, "imagePullSecrets"); ps != nil {
		for _, p := range ps.Content {
			if n := get(p, "name"); contains(owns, "imagePullSecret:"+n) {
				s.ImagePullSecrets = append(s.ImagePullSecrets, n)
			}
		}
		sort.Strings(s.ImagePullSecrets)
	}
	for _, part := range selectorParts(get(tm, "nodeSelector")) {
		k, v, _ := strings.Cut(part, "=")
		if contains(owns, "nodeSelector:"+k) {
			if s.NodeSelector == nil {
				s.NodeSelector = map[string]string{}
			}
			s.NodeSelector[k] = v
		}
	}
	if contains(owns, "yaml") {
		s.YAML = get(tm, "yaml")
	}
	if contains(owns, "yamlMergeStrategy") {
		s.YAMLMergeStrategy = get(tm, "yamlMergeStrategy")
	}
	if contains(owns, "inheritFrom") {
		s.InheritFrom = get(tm, "inheritFrom")
	}
	if contains(owns, "runAsUser") {
		s.RunAsUser = parseID(get(tm, "runAsUser"))
	}
	if contains(owns, "runAsGroup") {
		s.RunAsGroup = parseID(get(tm, "runAsGroup"))
	}
	if as := mapValue(tm, "annotations"); as != nil {
		for _, a := range as.Content {
			if get(a, "key") == markKey {
				s.Managed = true
			}
		}
	}
	return s
}

// cascOwns reads the owns annotation of a template mapping.
func cascOwns(tm *yaml.Node, esc escaper) []string {
	as := mapValue(tm, "annotations")
	if as == nil {
		return nil
	}
	for _, a := range as.Content {
		if k := mapValue(a, "key"); k != nil && esc.in(k.Value) == ownsKey {
			var owns []string
			if v := mapValue(a, "value"); v != nil {
				json.Unmarshal([]byte(esc.in(v.Value)), &owns)
			}
			return owns
		}
	}
	return nil
}

// ownedEmptyDir reports an emptyDirVolume on the node's disk (memory false
// or absent), which agentforge owns, and its mount path.
func ownedEmptyDir(v *yaml.Node, esc escaper) (string, bool) {
	if v.Kind != yaml.MappingNode || len(v.Content) != 2 || v.Content[0].Value != "emptyDirVolume" {
		return "", false
	}
	body := v.Content[1]
	if m := mapValue(body, "memory"); m != nil && m.Value == "true" {
		return "", false
	}
	p := mapValue(body, "mountPath")
	if p == nil {
		return "", false
	}
	return esc.in(p.Value), true
}

// mergeSelector applies the wanted selectors to a node selector string
// by mergeKeyed's rule.
func mergeSelector(cur string, wanted map[string]string, owned []string) string {
	pairs := map[string]string{}
	for k, v := range wanted {
		pairs[k] = k + "=" + v
	}
	keyOf := func(part string) string { k, _, _ := strings.Cut(part, "="); return k }
	return strings.Join(mergeKeyed(selectorParts(cur), keyOf, pairs, owned), ",")
}

func selectorParts(s string) []string {
	var parts []string
	for _, p := range strings.Split(s, ",") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}

// mergeOwnedList applies mergeKeyed's rule to the list under key in m,
// an item's key being the scalar keyNode finds in it: the wanted items
// replace or join the others, the owned ones no longer wanted go, and a
// list left empty is removed. Nothing wanted and nothing owned leaves m
// as it is.
func mergeOwnedList(m *yaml.Node, key string, wanted map[string]*yaml.Node, owned []string, keyNode func(*yaml.Node) *yaml.Node, esc escaper) {
	if len(wanted) == 0 && len(owned) == 0 {
		return
	}
	list := ensure(m, key, yaml.SequenceNode)
	list.Content = mergeKeyed(list.Content, func(n *yaml.Node) string {
		if k := keyNode(n); k != nil {
			return esc.in(k.Value)
		}
		return "\x00"
	}, wanted, owned)
	dropEmpty(m, key)
}

// mergeKeyed merges the wanted items into cur by key: an item whose key is
// wanted is replaced in place (once), an item agentforge owned and no
// longer wants is dropped, everything else stays where it is, and new
// items are added in key order.
func mergeKeyed[T any](cur []T, keyOf func(T) string, wanted map[string]T, owned []string) []T {
	var out []T
	placed := map[string]bool{}
	for _, item := range cur {
		k := keyOf(item)
		switch w, ok := wanted[k]; {
		case ok:
			if !placed[k] {
				out = append(out, w)
				placed[k] = true
			}
		case !contains(owned, k):
			out = append(out, item)
		}
	}
	var keys []string
	for k := range wanted {
		if !placed[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, wanted[k])
	}
	return out
}

// stableID is the id of a template agentforge adds to a YAML file: a
// name-based UUID (version 5) of the cloud and the template name, so that
// the template keeps its identity across runs and reloads.
func stableID(cloud, name string) string {
	ns := []byte("agentforge.io/pod-template")
	h := sha1.Sum(append(append(ns, 0), []byte(cloud+"\x00"+name)...))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func idText(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

func parseID(s string) *int64 {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

func prefixed(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if k, ok := strings.CutPrefix(s, prefix); ok {
			out = append(out, k)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseDoc parses a YAML document whose top is a mapping (an empty
// document becomes an empty mapping).
func parseDoc(doc []byte) (root, top *yaml.Node, err error) {
	root = &yaml.Node{Kind: yaml.DocumentNode}
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(root); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("more than one YAML document")
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		root = &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	top = root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, nil, errors.New("the document is not a mapping")
	}
	return root, top, nil
}

// yamlDoc is a YAML document being merged into: its parse tree, and its
// encoding before any change, so that a merge that changes nothing gives
// back the original bytes.
type yamlDoc struct {
	orig   []byte
	root   *yaml.Node
	before string
	refs   *yamlRefs
}

// mergeDoc resolves t, opens doc (see openDoc) and lets merge change the
// value at outer.inner (refs knowing the document's aliases); it returns
// the document as it is then.
func mergeDoc(doc []byte, t Template, what, outer, inner string, kind yaml.Kind, merge func(r Template, refs *yamlRefs, n *yaml.Node) (*Outcome, error)) ([]byte, *Outcome, error) {
	r, err := t.Resolve()
	if err != nil {
		return nil, nil, err
	}
	d, n, err := openDoc(doc, what, outer, inner, kind)
	if err != nil {
		return nil, nil, err
	}
	out, err := merge(r, d.refs, n)
	if err != nil {
		return nil, nil, err
	}
	return d.bytes(), out, nil
}

// openDoc parses doc and returns the value at outer.inner in it, a mapping
// holding a value of kind; both are created when missing. The document,
// outer and outer.inner must be written out in full (see yamlRefs). An
// error is an *InputError that starts with what.
func openDoc(doc []byte, what, outer, inner string, kind yaml.Kind) (*yamlDoc, *yaml.Node, error) {
	// yaml.v3 places the comments of a CRLF text otherwise (a comment
	// before the first key becomes the document's, a blank line after
	// it): it reads the text with LF line endings, as YAML does anyway.
	lf := doc
	if bytes.Count(doc, []byte("\r\n")) == bytes.Count(doc, []byte("\n")) {
		lf = bytes.ReplaceAll(doc, []byte("\r\n"), []byte("\n"))
	}
	root, top, err := parseDoc(lf)
	if err != nil {
		return nil, nil, &InputError{Msg: what + ": " + err.Error()}
	}
	d := &yamlDoc{orig: doc, root: root, before: encodeDoc(root, lf), refs: newYAMLRefs(root, what)}
	if err := d.refs.plain(top, "the document"); err != nil {
		return nil, nil, err
	}
	if err := d.refs.plain(mapValue(top, outer), outer); err != nil {
		return nil, nil, err
	}
	if err := d.refs.plain(mapValue(mapValue(top, outer), inner), outer+"."+inner); err != nil {
		return nil, nil, err
	}
	m, err := child(top, outer, yaml.MappingNode)
	if err != nil {
		return nil, nil, &InputError{Msg: what + ": " + err.Error()}
	}
	n, err := child(m, inner, kind)
	if err != nil {
		return nil, nil, &InputError{Msg: what + ": " + outer + "." + err.Error()}
	}
	return d, n, nil
}

// bytes is the document as it is now: the original bytes when nothing
// changed, else the encoded document with the original's blank lines
// where they were (see keepBlankLines).
func (d *yamlDoc) bytes() []byte {
	if after := encodeDoc(d.root, d.orig); after != d.before {
		return []byte(keepBlankLines(string(d.orig), d.before, after))
	}
	return d.orig
}

// keepBlankLines puts the blank lines of orig back into after. yaml.v3
// keeps comments and order but drops blank lines, so every write would
// squeeze the admin's file into one block, a diff on every line of their
// configuration repository. before is orig as the encoder writes it
// unchanged: the lines where after differs from it are the change, and
// the rest of orig is kept as it is (see spliceBlankLines). The result
// must read as after does; else it is after.
//
// A file with CRLF line endings is written with CRLF line endings, one
// that starts with "---" keeps that line, and one without a newline at
// its end gets one (the encoder's last line).
func keepBlankLines(orig, before, after string) string {
	crlf := strings.Contains(orig, "\r\n") && strings.Count(orig, "\r\n") == strings.Count(orig, "\n")
	if crlf {
		orig = strings.ReplaceAll(orig, "\r\n", "\n")
	}
	if orig != "" && !strings.HasSuffix(orig, "\n") {
		orig += "\n"
	}
	out := spliceBlankLines(orig, before, after)
	if crlf {
		// YAML reads CRLF as LF (in block scalars too): the same document.
		if c := strings.ReplaceAll(out, "\n", "\r\n"); readsAs(c, after) {
			return c
		}
	}
	return out
}

// spliceBlankLines is keepBlankLines on a file with LF line endings that
// ends with one. The change is the run of lines where after differs from
// before; the lines of orig around it are kept as they are (blank lines,
// and the file's own spelling of what the encoder writes otherwise, such
// as "resources:" over "  {}"), found by the encoded lines next to the
// change, which must stand once in orig. In the changed run, orig's blank
// lines go with the lines of after that orig has too. What cannot be
// placed so gives after as it is.
func spliceBlankLines(orig, before, after string) string {
	o := strings.Split(orig, "\n")
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	p := 0 // lines shared at the start
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0 // lines shared at the end
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	e := len(b) - s
	// x: orig's lines before it are those before the change; y: those from
	// it on are those after it.
	x, y, ok := exactPlace(o, b, p, e)
	if !ok {
		if x, ok = anchorEnd(o, b[:p]); !ok {
			return after
		}
		if y, ok = anchorStart(o, b[e:], x); !ok {
			return after
		}
	}
	if p == e {
		// An insertion: the blank lines after the line before it stay
		// after the new lines (a template goes next to its siblings, not
		// after the gap that ends their list).
		for x > 0 && x <= y && strings.TrimSpace(o[x-1]) == "" {
			x--
		}
		y = x
	}
	lines := append(append([]string{}, o[:x]...), withBlankLines(o[x:y], a[p:len(a)-s])...)
	out := strings.Join(append(lines, o[y:]...), "\n")
	// A blank line is content inside a block scalar: should one land in
	// one, the document would say something else. It must read the same.
	// Nor may a line of orig kept around the change be one the encoder
	// puts inside it, or the other way round (the anchors are found by
	// their text only, and orig may be spelled otherwise than before): a
	// comment would be dropped or doubled, a key moved, where the data
	// reads the same. Read and written again, it must be after.
	if !readsAs(out, after) || !encodesAs(out, after, orig) {
		return after
	}
	return out
}

// encodesAs reports whether the YAML text doc, read and encoded again
// (with the indentation of original, as encodeDoc does), is want: the
// same data, and also the same key order, comments where the encoder
// places them, anchors, tags and styles, which readsAs does not compare.
func encodesAs(doc, want, original string) bool {
	var root yaml.Node
	if yaml.Unmarshal([]byte(doc), &root) != nil {
		return false
	}
	if len(root.Content) == 0 {
		root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	return encodeDoc(&root, []byte(original)) == want
}

// maxAnchor bounds how many lines next to a change are compared to find
// where it is in the original file.
const maxAnchor = 200

// nonBlank lists the indexes of lines that are not blank.
func nonBlank(lines []string) []int {
	var out []int
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			out = append(out, i)
		}
	}
	return out
}

// exactPlace is where anchorEnd and anchorStart would find the change
// (before's lines p to e) when orig's lines that are not blank are
// before's, one for one (a leading "---" aside), as in a file agentforge
// wrote: their places are then known, however many lines repeat (two
// templates alike over more than maxAnchor lines), and no anchor is
// needed.
func exactPlace(o, b []string, p, e int) (x, y int, ok bool) {
	on, bn := nonBlank(o), nonBlank(b)
	if len(on) > 0 && strings.TrimRight(o[on[0]], " \t") == "---" && (len(bn) == 0 || b[bn[0]] != o[on[0]]) {
		on = on[1:]
	}
	if len(on) != len(bn) {
		return 0, 0, false
	}
	for i := range on {
		if o[on[i]] != b[bn[i]] {
			return 0, 0, false
		}
	}
	x, _ = anchorEnd(o, nil) // after a leading "---"
	if k := sort.SearchInts(bn, p); k > 0 {
		x = on[k-1] + 1
	}
	y, _ = anchorStart(o, nil, x) // after o's last line that is not blank
	if k := sort.SearchInts(bn, e); k < len(bn) {
		y = on[k]
	}
	return x, y, true
}

// anchorEnd finds where the lines ctx (the encoded file before a change)
// end in o: the index in o after the last of them. The last non-blank
// lines of ctx, as few as stand once in o, must stand there in a row
// (blank lines aside). With no ctx, that is the start of o, after a
// leading "---".
func anchorEnd(o, ctx []string) (int, bool) {
	want := nonBlank(ctx)
	if len(want) == 0 {
		for i, l := range o {
			if strings.TrimSpace(l) == "" {
				continue
			}
			if strings.TrimRight(l, " \t") == "---" {
				return i + 1, true
			}
			return i, true
		}
		return 0, true // nothing but blank lines: they end the file
	}
	have := nonBlank(o)
	// cands are the places in have where the last k lines of want stand
	// in a row, by the index of the last; each more line of context
	// keeps those where it stands too.
	var cands []int
	for i, h := range have {
		if o[h] == ctx[want[len(want)-1]] {
			cands = append(cands, i)
		}
	}
	for k := 1; len(cands) > 1 && k < len(want) && k < maxAnchor; k++ {
		line := ctx[want[len(want)-1-k]]
		cands = slices.DeleteFunc(cands, func(c int) bool { return c-k < 0 || o[have[c-k]] != line })
	}
	if len(cands) != 1 {
		return 0, false
	}
	return have[cands[0]] + 1, true
}

// anchorStart finds where the lines ctx (the encoded file after a
// change) start in o, at or after from: the index in o of the first of
// them, as anchorEnd does from the other end. With nothing but blank
// lines in ctx, that is after o's last line that is not blank.
func anchorStart(o, ctx []string, from int) (int, bool) {
	want := nonBlank(ctx)
	if len(want) == 0 {
		last := nonBlank(o)
		if len(last) == 0 || last[len(last)-1] < from {
			return from, true
		}
		return last[len(last)-1] + 1, true
	}
	var have []int
	for _, i := range nonBlank(o) {
		if i >= from {
			have = append(have, i)
		}
	}
	var cands []int // as in anchorEnd, by the index of the first
	for i, h := range have {
		if o[h] == ctx[want[0]] {
			cands = append(cands, i)
		}
	}
	for k := 1; len(cands) > 1 && k < len(want) && k < maxAnchor; k++ {
		line := ctx[want[k]]
		cands = slices.DeleteFunc(cands, func(c int) bool { return c+k >= len(have) || o[have[c+k]] != line })
	}
	if len(cands) != 1 {
		return 0, false
	}
	return have[cands[0]], true
}

// withBlankLines is the changed lines a, with the blank lines of old (the
// same place in the original file) before the lines of a that old has
// too (a longest common subsequence), and those after old's last line
// after a's. A run too long to compare keeps none.
func withBlankLines(old, a []string) []string {
	lines := nonBlank(old)
	if len(lines) == 0 || len(lines)*len(a) > 1<<22 {
		return append(append([]string{}, a...), trailingBlank(old)...)
	}
	// lcs[i][j]: the longest common subsequence of old's lines[i:] and a[j:].
	lcs := make([][]int32, len(lines)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(a)+1)
	}
	for i := len(lines) - 1; i >= 0; i-- {
		for j := len(a) - 1; j >= 0; j-- {
			switch {
			case old[lines[i]] == a[j]:
				lcs[i][j] = lcs[i+1][j+1] + 1
			case lcs[i+1][j] >= lcs[i][j+1]:
				lcs[i][j] = lcs[i+1][j]
			default:
				lcs[i][j] = lcs[i][j+1]
			}
		}
	}
	var out, blank []string // blank: old's blank lines not yet placed
	prev := 0               // the index in old after the last line passed
	for i, j := 0, 0; j < len(a); {
		if i < len(lines) && old[lines[i]] == a[j] {
			blank = append(blank, old[prev:lines[i]]...)
			prev = lines[i] + 1
			i++
		} else if i < len(lines) && lcs[i+1][j] >= lcs[i][j+1] {
			// A line that changed or went: its blank lines go before
			// the next line placed.
			blank = append(blank, old[prev:lines[i]]...)
			prev = lines[i] + 1
			i++
			continue
		}
		out = append(append(out, blank...), a[j])
		blank = nil
		j++
	}
	return append(out, trailingBlank(old)...)
}

// trailingBlank is the blank lines at the end of lines.
func trailingBlank(lines []string) []string {
	n := len(lines)
	for n > 0 && strings.TrimSpace(lines[n-1]) == "" {
		n--
	}
	return lines[n:]
}

// readsAs reports whether the YAML text doc reads as want does.
func readsAs(doc, want string) bool {
	var g, w any
	return yaml.Unmarshal([]byte(doc), &g) == nil && yaml.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
}

// encodeDoc encodes a document with the indentation of the original text
// (2 when it has none to go by). A << merge key is written as it was read:
// yaml.v3 gives it the tag !!merge, which its encoder would spell out.
func encodeDoc(root *yaml.Node, original []byte) string {
	untagMergeKeys(root)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(indentOf(original))
	enc.Encode(root)
	enc.Close()
	return b.String()
}

// untagMergeKeys drops the implicit !!merge tag of the << keys under n
// (isMergeKey still knows them; a YAML reader takes a plain << as a
// merge key).
func untagMergeKeys(n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge" && k.Style&yaml.TaggedStyle == 0 {
				k.Tag = ""
			}
		}
	}
	for _, c := range n.Content {
		untagMergeKeys(c)
	}
}

// indentOf finds the indentation of the first indented mapping key.
func indentOf(doc []byte) int {
	for _, line := range strings.Split(string(doc), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		n := len(line) - len(trimmed)
		if n > 0 && trimmed != "" && !strings.HasPrefix(trimmed, "#") && !strings.HasPrefix(trimmed, "-") {
			if n == 2 || n == 4 {
				return n
			}
			return 2
		}
	}
	return 2
}

// child returns the value of key in the mapping m, creating it of kind
// when it is missing (or null); a value of another kind is an error.
func child(m *yaml.Node, key string, kind yaml.Kind) (*yaml.Node, error) {
	v := mapValue(m, key)
	if v == nil || v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		n := &yaml.Node{Kind: kind}
		setKey(m, key, n)
		return n, nil
	}
	if v.Kind != kind {
		return nil, fmt.Errorf("%s is not a %s", key, map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}[kind])
	}
	return v, nil
}

// ensure is child for values agentforge writes itself: a value of another
// kind is replaced.
func ensure(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	v, err := child(m, key, kind)
	if err != nil {
		v = &yaml.Node{Kind: kind}
		setKey(m, key, v)
	}
	return v
}

// setKey sets key in the mapping m: in place when it is there, otherwise
// before the first key that sorts after it (JCasC's export sorts keys).
func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v.HeadComment, v.LineComment, v.FootComment = m.Content[i+1].HeadComment, m.Content[i+1].LineComment, m.Content[i+1].FootComment
			if same(m.Content[i+1], v) {
				return
			}
			m.Content[i+1] = v
			return
		}
	}
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value > key {
			at = i
			break
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	m.Content = append(m.Content[:at], append([]*yaml.Node{k, v}, m.Content[at:]...)...)
}

// same reports scalars with the same value and tag (the style may differ:
// a value written by hand without quotes is left as it was).
func same(a, b *yaml.Node) bool {
	return a.Kind == yaml.ScalarNode && b.Kind == yaml.ScalarNode && a.Value == b.Value && a.ShortTag() == b.ShortTag()
}

func setOrDelete(m *yaml.Node, key, value string, esc escaper) {
	if value == "" {
		deleteKey(m, key)
		return
	}
	setKey(m, key, str(value, esc))
}

func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// dropEmpty removes a list agentforge emptied (JCasC's export leaves
// empty lists out).
func dropEmpty(m *yaml.Node, key string) {
	if v := mapValue(m, key); v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		deleteKey(m, key)
	}
}

func str(s string, esc escaper) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: esc.out(s), Style: yaml.DoubleQuotedStyle}
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

func plain(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func num(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
}

func boolean(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}

// mapping is {symbol: body}, a describable under its JCasC symbol.
func mapping(symbol string, body *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{plain(symbol), body}}
}

func annotation(key, value string, esc escaper) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	setKey(n, "key", str(key, esc))
	setKey(n, "value", str(value, esc))
	return n
}
