package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// --version works like the version command, and the version is the one
// linked in (make: git describe), or "dev" for a build without one.
func TestVersionFlag(t *testing.T) {
	for _, tc := range []struct {
		name, linked, want string
	}{
		{"git tag", "v1.4.0-3-gabc1234-dirty", "agentforge v1.4.0-3-gabc1234-dirty ("},
		{"outside git", "", "agentforge dev ("},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := version
			version = tc.linked
			defer func() { version = old }()
			code, stdout, stderr := cli(t, "--version")
			if code != 0 || !strings.HasPrefix(stdout, tc.want) || !strings.Contains(stdout, "buildah ") {
				t.Fatalf("--version: exit %d, %q, %q; want %q…", code, stdout, stderr, tc.want)
			}
			code, sub, _ := cli(t, "version")
			if code != 0 || sub != stdout {
				t.Errorf("version subcommand %q, --version %q", sub, stdout)
			}
			code, js, _ := cli(t, "version", "-o", "json")
			var v map[string]string
			if code != 0 || json.Unmarshal([]byte(js), &v) != nil || !strings.HasPrefix(tc.want, "agentforge "+v["version"]+" ") {
				t.Errorf("version -o json: %q", js)
			}
		})
	}
}

// Every command's --help ends with an example of its use.
func TestHelp_EveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Runnable() && !c.Hidden && c.Name() != "help" && !strings.HasPrefix(c.CommandPath(), "agentforge completion") && c.Example == "" {
			t.Errorf("%s: no example in --help", c.CommandPath())
		}
	}
	walk((&app{}).rootCommand())
}
