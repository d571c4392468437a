package yamlkeys

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type inner struct {
	Cloud string `yaml:"cloud"`
	Label string `yaml:"label,omitempty"`
}

type outer struct {
	Name    string
	Version string `yaml:"version"`
	Skip    string `yaml:"-"`
	line    int
	inner   `yaml:",inline"`
}

func TestUnknown(t *testing.T) {
	if got := strings.Join(Of(reflect.TypeOf(outer{})), " "); got != "cloud label name version" {
		t.Errorf("Of = %q, want the tags, the lower-cased name and the inline struct's keys", got)
	}
	for _, tc := range []struct {
		doc, unknown string
		line         int
	}{
		{"name: a\nversion: 1\ncloud: k\nlabel: l\n", "", 0},
		{"name: a\nverson: 1\n", "verson", 2},
		{"name: a\nSkip: x\n", "Skip", 2},
		{"name: a\nline: 3\n", "line", 2},
		{"- a\n", "", 0}, // not a mapping: the decoder says so
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.doc), &doc); err != nil {
			t.Fatal(err)
		}
		k, known := Unknown(doc.Content[0], reflect.TypeOf(outer{}))
		switch {
		case tc.unknown == "" && k != nil:
			t.Errorf("%q: unknown %q, want none", tc.doc, k.Value)
		case tc.unknown != "" && (k == nil || k.Value != tc.unknown || k.Line != tc.line || len(known) != 4):
			t.Errorf("%q: got %v %q, want %q on line %d with the 4 known keys", tc.doc, k, known, tc.unknown, tc.line)
		}
	}
}
