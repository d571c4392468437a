package jenkins

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// YAML anchors (&a), aliases (*a) and merge keys (<<: *a) share one node
// between several places of a document. agentforge edits the parse tree
// in place, so a change to a shared node would show wherever it is used
// (updating an anchored template would change its <<: *a copies too), and
// a key written next to a merge key would hide the one it brings in (a
// local templates list in place of the inherited one). The parts of a
// document agentforge writes into must therefore be written out in full;
// yamlRefs finds those that are not.

// yamlRefs knows which anchored nodes of a document aliases refer to.
type yamlRefs struct {
	// what names the document (or text) in errors.
	what string
	// aliased maps an anchored node to the first alias of it.
	aliased map[*yaml.Node]*yaml.Node
}

// newYAMLRefs indexes the aliases of the document at root.
func newYAMLRefs(root *yaml.Node, what string) *yamlRefs {
	r := &yamlRefs{what: what, aliased: map[*yaml.Node]*yaml.Node{}}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.AliasNode {
			if _, ok := r.aliased[n.Alias]; !ok {
				r.aliased[n.Alias] = n
			}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return r
}

// plain refuses n, the part of the document named by part, when a change
// to it would not stay where it is written: n is an alias, carries an
// anchor that an alias uses, or is a mapping with a << merge key.
func (r *yamlRefs) plain(n *yaml.Node, part string) error {
	return r.check(n, part, "is")
}

// plainTree is plain for n and every node under it.
func (r *yamlRefs) plainTree(n *yaml.Node, part string) error {
	if err := r.plain(n, part); err != nil {
		return err
	}
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		for _, c := range n.Content {
			if err := r.check(c, part, "holds"); err != nil {
				return err
			}
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n)
}

// check is plain; verb says whether part is n ("is") or contains it
// ("holds").
func (r *yamlRefs) check(n *yaml.Node, part, verb string) error {
	if n == nil {
		return nil
	}
	a := "a"
	if verb == "is" {
		a = "the"
	}
	switch {
	case n.Kind == yaml.AliasNode:
		return r.refuse(n.Line, part, fmt.Sprintf("%s an alias (*%s) of the node anchored at line %d: a change to it would change that node and every other alias of it", verb, n.Alias.Anchor, n.Alias.Line))
	case n.Anchor != "" && r.aliased[n] != nil:
		return r.refuse(n.Line, part, fmt.Sprintf("%s %s node anchored &%s, used again at line %d (*%s): a change to it would show there too", verb, a, n.Anchor, r.aliased[n].Line, n.Anchor))
	}
	if k := mergeKey(n); k != nil {
		what := "takes keys through a << merge key"
		if verb == "holds" {
			what = "holds a mapping that takes keys through a << merge key"
		}
		return r.refuse(k.Line, part, what+": agentforge would write next to the keys it brings in, and a key written there hides the inherited one (a templates list, a container)")
	}
	return nil
}

func (r *yamlRefs) refuse(line int, part, problem string) error {
	return &InputError{Msg: fmt.Sprintf("%s, line %d: %s %s; write %s out in full, without anchors (&), aliases (*) or << merge keys, and run again", r.what, line, part, problem, part)}
}

// mergeKey is the first << merge key of the mapping n, or nil.
func mergeKey(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; isMergeKey(k) {
			return k
		}
	}
	return nil
}

// isMergeKey reports a << merge key: tagged !!merge as read, or untagged
// and plain once encodeDoc has dropped the tag (a quoted "<<" is a string).
func isMergeKey(k *yaml.Node) bool {
	if k.Kind != yaml.ScalarNode || k.Value != "<<" {
		return false
	}
	quoted := yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	return k.ShortTag() == "!!merge" || k.Tag == "" && k.Style&quoted == 0
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// lookup is mapValue as a YAML reader sees the mapping: through aliases
// and << merge keys (a key written in the mapping wins, then the merged
// mappings in order).
func lookup(n *yaml.Node, key string) *yaml.Node {
	return lookupDepth(n, key, 0)
}

func lookupDepth(n *yaml.Node, key string, depth int) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode || depth > 100 {
		return nil
	}
	if v := mapValue(n, key); v != nil {
		return resolve(v)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !isMergeKey(n.Content[i]) {
			continue
		}
		from := resolve(n.Content[i+1])
		sources := []*yaml.Node{from}
		if from != nil && from.Kind == yaml.SequenceNode {
			sources = from.Content
		}
		for _, s := range sources {
			if v := lookupDepth(s, key, depth+1); v != nil {
				return v
			}
		}
	}
	return nil
}
