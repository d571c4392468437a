package images

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/agentforge/agentforge/images/yamlkeys"
	"gopkg.in/yaml.v3"
)

// lineError is a problem found while decoding, tied to a line of image.yaml.
// Load turns it into a *DefinitionError naming the file.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// str is a YAML scalar that remembers the line it was written on, so that
// checks made after decoding can still point at it.
type str struct {
	Value string
	Line  int
}

// UnmarshalYAML accepts scalars only: a mapping or list where a string is
// expected is an error, not a silently stringified value.
func (s *str) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &lineError{n.Line, fmt.Sprintf("expected a single value, found %s", kindName(n.Kind))}
	}
	if n.Tag == "!!null" {
		s.Value, s.Line = "", n.Line
		return nil
	}
	s.Value, s.Line = n.Value, n.Line
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a value"
	}
}

// decodeStrict decodes mapping node n into out (a pointer to a struct without
// its own UnmarshalYAML) after checking that every key is one of out's yaml
// field names (see package yamlkeys).
func decodeStrict(n *yaml.Node, out any) error {
	if n.Kind != yaml.MappingNode {
		return &lineError{n.Line, fmt.Sprintf("expected a mapping, found %s", kindName(n.Kind))}
	}
	if k, known := yamlkeys.Unknown(n, reflect.TypeOf(out).Elem()); k != nil {
		return &lineError{k.Line, fmt.Sprintf("unknown key %q (allowed here: %s)", k.Value, strings.Join(known, ", "))}
	}
	return convertYAMLError(n.Decode(out))
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// convertYAMLError turns yaml.v3's "line N: msg" errors into *lineError.
func convertYAMLError(err error) error {
	if err == nil {
		return nil
	}
	var le *lineError
	if errors.As(err, &le) {
		return le
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &lineError{line, plainTypeError(m[2])}
	}
	return &lineError{0, err.Error()}
}

var yamlTypeRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `.*`)? into (\\S+)$")

// plainTypeError says yaml.v3's "cannot unmarshal !!map into
// []images.mapping[…]" in the definition's words: "expected a list, found
// a mapping". Other messages are returned as they are.
func plainTypeError(msg string) string {
	m := yamlTypeRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	found := map[string]string{"map": "a mapping", "seq": "a list"}[m[1]]
	if found == "" {
		found = "a value"
	}
	want := "a value"
	switch into := m[2]; {
	case strings.HasPrefix(into, "[]"):
		want = "a list"
	case strings.HasPrefix(into, "map["), strings.Contains(into, "mapping["):
		want = "a mapping"
	}
	return fmt.Sprintf("expected %s, found %s", want, found)
}

// fixParserLine corrects the line of yaml.v3's parser errors ("did not
// find expected …"), which it reports 0-based (the line before the faulty
// one; its scanner errors are right). For an unclosed flow collection it
// names the line that opened it.
func fixParserLine(le *lineError, data []byte) *lineError {
	if !strings.HasPrefix(le.msg, "did not find expected") {
		return le
	}
	lines := strings.Split(string(data), "\n")
	line := min(le.line+1, len(lines))
	open, close := "", ""
	switch {
	case strings.Contains(le.msg, "']'"):
		open, close = "[", "]"
	case strings.Contains(le.msg, "'}'"):
		open, close = "{", "}"
	}
	if open != "" {
		for i := line; i >= 1; i-- {
			if l := lines[i-1]; strings.Count(l, open) > strings.Count(l, close) {
				return &lineError{i, le.msg}
			}
		}
	}
	return &lineError{line, le.msg}
}
