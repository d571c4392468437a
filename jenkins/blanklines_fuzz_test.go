package jenkins

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// keepBlankLines on any file and any change the encoder makes to it: it
// never panics, what it writes reads as the encoded document does, and
// it has the encoded document's comments, none dropped or doubled (the
// data alone would not show a comment lost by a misplaced splice).
// The change is a value replaced, or a key added, at a node the input
// picks.
func FuzzKeepBlankLines(f *testing.F) {
	for _, seed := range []string{
		"a: 1\n\nb:\n  - x\n\n  - y\nc: |\n  one\n\n  two\n",
		"---\n# c\n\njenkins:\n  clouds:\n    - kubernetes:\n        templates: []\n\nunclassified: {}\n",
		"agent:\n  resources:\n    {}\n\n  podTemplates: {}\nx:\n  []\n",
		"k: v\r\n\r\nl: w",
		"#\n  #\nA\n",
		"t:\n  a: 1\n  # --\n  # about b\n# --\n  b: 2\n\nu: 3\n",
		"",
	} {
		f.Add(seed, uint8(1), true)
		f.Add(seed, uint8(4), false)
	}
	f.Fuzz(func(t *testing.T, orig string, pick uint8, add bool) {
		var root yaml.Node
		if yaml.Unmarshal([]byte(orig), &root) != nil || len(root.Content) == 0 {
			return
		}
		before := encodeDoc(&root, []byte(orig))
		var nodes []*yaml.Node
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			nodes = append(nodes, n)
			for _, c := range n.Content {
				walk(c)
			}
		}
		walk(root.Content[0])
		n := nodes[int(pick)%len(nodes)]
		switch {
		case add && n.Kind == yaml.MappingNode:
			n.Content = append(n.Content, plain("agentforge-added"), plain("value\nover lines"))
		case n.Kind == yaml.ScalarNode && n.Alias == nil:
			n.Value += "-changed"
		default:
			return
		}
		after := encodeDoc(&root, []byte(orig))
		if !readsAs(after, after) {
			return // the change made the document unreadable (a tagged scalar): not ours
		}
		out := keepBlankLines(orig, before, after)
		if !readsAs(out, after) && !readsAs(strings.ReplaceAll(out, "\r\n", "\n"), after) {
			t.Fatalf("reads otherwise than the encoded document:\n--- orig\n%q\n--- after\n%q\n--- got\n%q", orig, after, out)
		}
		// (Where the encoder itself drops a comment, the file's own
		// lines kept may still hold it.)
		if got, want := commentLines(out), commentLines(after); slices.Equal(commentLines(orig), commentLines(before)) && !slices.Equal(got, want) {
			t.Fatalf("comments %q, the encoded document's %q:\n--- orig\n%q\n--- after\n%q\n--- got\n%q", got, want, orig, after, out)
		}
	})
}

// commentLines are the comment lines of a YAML text, trimmed and sorted.
func commentLines(doc string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}
