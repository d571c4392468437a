package jenkins

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// PodmanUnprivilegedYAML is the jnlp container's securityContext with which
// rootless podman runs in the agent without a privileged container,
// measured (README, "Rootless podman in a pod"): all capabilities dropped
// but SETUID and SETGID (newuidmap and newgidmap need them), privilege
// escalation allowed (their file capabilities), and seccomp Unconfined
// (the runtime's default profile refuses the nested container's chroot).
// The plugin's ContainerTemplate models none of these, so they go into the
// template's raw YAML. The plugin merges that YAML under its own fields
// (PodTemplateBuilder.java L298-299, PodTemplateUtils.combine(Pod, Pod)):
// the jnlp container from the fields has no securityContext unless it is
// privileged or runs as a user, and then PodTemplateUtils.combine(Container,
// Container) (L130-190, jenkinsci/kubernetes-plugin a82d78a0) keeps the
// YAML's securityContext, because it carries capabilities.
const PodmanUnprivilegedYAML = `spec:
  containers:
  - name: jnlp
    securityContext:
      allowPrivilegeEscalation: true
      capabilities:
        add:
        - SETUID
        - SETGID
        drop:
        - ALL
      seccompProfile:
        type: Unconfined
`

// checkPodYAML refuses what the plugin could not read as a pod: not one
// YAML mapping, a kind other than Pod, containers without a valid name.
func checkPodYAML(y string) error {
	if len(y) > maxYAML {
		return fmt.Errorf("%d bytes, more than %d", len(y), maxYAML)
	}
	if !utf8.ValidString(y) || strings.ContainsRune(y, 0) {
		return errors.New("not UTF-8 text without NUL bytes")
	}
	doc, err := parsePodYAML(y)
	if err != nil {
		return err
	}
	if doc == nil {
		return nil
	}
	if err := jacksonReadable(doc); err != nil {
		return err
	}
	if k := mapValue(doc, "kind"); k != nil && k.Value != "Pod" {
		return fmt.Errorf("kind %q: want a Pod", k.Value)
	}
	spec := mapValue(doc, "spec")
	if spec == nil {
		return nil
	}
	if spec.Kind != yaml.MappingNode {
		return errors.New("spec is not a mapping")
	}
	for _, key := range []string{"containers", "initContainers"} {
		list := mapValue(spec, key)
		if list == nil {
			continue
		}
		if list.Kind != yaml.SequenceNode {
			return fmt.Errorf("spec.%s is not a list", key)
		}
		for _, c := range list.Content {
			name := mapValue(c, "name")
			if c.Kind != yaml.MappingNode || name == nil || !k8sNameRE.MatchString(name.Value) || name.Value == "" {
				return fmt.Errorf("spec.%s: every container needs a name of lowercase letters, digits and -", key)
			}
		}
	}
	return nil
}

// jacksonReadable refuses the YAML the plugin would read as something else:
// it parses pod YAML with Jackson (PodTemplateUtils.parseFromYaml,
// Serialization2.unmarshal, jenkinsci/kubernetes-plugin a82d78a0), whose
// YAMLParser turns an alias into a string holding the anchor's name ("for
// now, nothing to do", FasterXML/jackson-dataformats-text
// yaml/.../YAMLParser.java, nextToken, Alias) and has no << merge keys (a
// key like any other, which the pod model does not have). The template
// would be registered, and every pod of it fail, or lose what the alias or
// merge key brought in.
func jacksonReadable(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return fmt.Errorf("line %d: an alias (*%s): the Kubernetes plugin's YAML reader (Jackson) takes it for the string %q; write the value out in full", n.Line, n.Value, n.Value)
	case n.Kind == yaml.MappingNode:
		if k := mergeKey(n); k != nil {
			return fmt.Errorf("line %d: a << merge key: the Kubernetes plugin's YAML reader (Jackson) has none, and the keys it brings in are lost; write them out in full", k.Line)
		}
	}
	for _, c := range n.Content {
		if err := jacksonReadable(c); err != nil {
			return err
		}
	}
	return nil
}

// parsePodYAML parses one YAML document whose top is a mapping; nil for an
// empty document.
func parsePodYAML(y string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(y))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping (a pod: apiVersion, kind, metadata, spec)")
	}
	return top, nil
}

// mergePodYAML merges overlays into base, both pod YAML: mappings key by
// key, containers and initContainers by name, anything else replaced by
// the overlay. The result keeps base's order and comments.
func mergePodYAML(base string, overlays ...string) (string, error) {
	top, err := parsePodYAML(base)
	if err != nil {
		return "", err
	}
	if top == nil {
		top, _ = parsePodYAML("apiVersion: v1\nkind: Pod\n")
	}
	for _, o := range overlays {
		on, err := parsePodYAML(o)
		if err != nil {
			return "", fmt.Errorf("overlay: %w", err)
		}
		mergeNode(top, on)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(top); err != nil {
		return "", err
	}
	enc.Close()
	return b.String(), nil
}

// mergeNode merges the mapping src into the mapping dst.
func mergeNode(dst, src *yaml.Node) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		key, val := src.Content[i], src.Content[i+1]
		cur := mapValue(dst, key.Value)
		switch {
		case cur == nil:
			dst.Content = append(dst.Content, key, val)
		case cur.Kind == yaml.MappingNode && val.Kind == yaml.MappingNode:
			mergeNode(cur, val)
		case (key.Value == "containers" || key.Value == "initContainers") && cur.Kind == yaml.SequenceNode && val.Kind == yaml.SequenceNode:
			for _, c := range val.Content {
				var same *yaml.Node
				if name := mapValue(c, "name"); name != nil {
					same = namedItem(cur, name.Value)
				}
				if same != nil && same.Kind == yaml.MappingNode && c.Kind == yaml.MappingNode {
					mergeNode(same, c)
				} else {
					cur.Content = append(cur.Content, c)
				}
			}
		default:
			*cur = *val
		}
	}
}

// namedItem is the last item of the list whose name is name, or nil.
func namedItem(list *yaml.Node, name string) *yaml.Node {
	if list == nil {
		return nil
	}
	var found *yaml.Node
	for _, d := range list.Content {
		if n := mapValue(d, "name"); n != nil && n.Value == name {
			found = d
		}
	}
	return found
}

// SetContainerImage returns the pod YAML y with the image of its container
// named name set to image (a builder pod pinned to the image just
// published); the rest is kept. A pod without that container is an error.
func SetContainerImage(y, name, image string) (string, error) {
	top, err := parsePodYAML(y)
	if err != nil {
		return "", err
	}
	if top == nil || namedItem(mapValue(mapValue(top, "spec"), "containers"), name) == nil {
		return "", fmt.Errorf("no container %q in spec.containers", name)
	}
	overlay, err := yaml.Marshal(map[string]any{"spec": map[string]any{"containers": []map[string]string{{"name": name, "image": image}}}})
	if err != nil {
		return "", err
	}
	return mergePodYAML(y, string(overlay))
}

// mapValue is the value of key in the mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
