// Package yamlkeys finds the keys of a YAML mapping that a Go struct does
// not read. yaml.v3's Decoder.KnownFields refuses them for a whole
// document, but not in a type's own UnmarshalYAML (Node.Decode has no such
// option), which is where agentforge records lines and applies defaults:
// those call Unknown first.
package yamlkeys

import (
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Of are the keys a struct type reads from YAML as yaml.v3 names them: a
// field's yaml tag, else its name in lower case; inline structs' keys
// included, "-" and unexported fields left out.
func Of(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			keys = append(keys, Of(f.Type)...)
		case name == "-" || !f.IsExported():
		case name == "":
			keys = append(keys, strings.ToLower(f.Name))
		default:
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// Unknown returns the first key of the mapping n that t does not read,
// with the keys it does (sorted); nil when there is none or n is not a
// mapping.
func Unknown(n *yaml.Node, t reflect.Type) (*yaml.Node, []string) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	known := Of(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(known, k.Value) {
			return k, known
		}
	}
	return nil, nil
}
