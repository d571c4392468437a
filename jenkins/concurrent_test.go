package jenkins

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
)

// Registrations that reach Jenkins at the same moment (two pipelines
// releasing at once) run on two Jetty threads against the one
// KubernetesCloud: Jenkins' /scriptText evaluates each request on the
// thread that serves it (Jenkins.java _doScript, RemotingDiagnostics), and
// the plugin's template list is a plain ArrayList that setTemplates
// replaces and addTemplate appends to, unsynchronized (KubernetesCloud.java
// at kubernetes-plugin a82d78a). No registration may lose another's
// template, a name is created once, and a removal takes out only its own.
func TestScripts_ConcurrentRegistrationsLoseNothing(t *testing.T) {
	const n = 6
	register := func(t *testing.T, names ...string) []string {
		var out []string
		for _, name := range names {
			tmpl := pythonTemplate(digestA)
			tmpl.Name, tmpl.Label = name, name
			s, err := upsertRequest(tmpl, Options{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	remove := func(t *testing.T, names ...string) []string {
		var out []string
		for _, name := range names {
			s, err := payload(removeScript, map[string]any{"cloud": "kubernetes", "name": name})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		before   func(t *testing.T) []string // run first
		scripts  func(t *testing.T) []string
		names    []string // the templates there afterwards, besides maven
		statuses []string // sorted
	}{
		{name: "different templates", scripts: func(t *testing.T) []string {
			return register(t, "agent-0", "agent-1", "agent-2", "agent-3", "agent-4", "agent-5")
		}, names: []string{"agent-0", "agent-1", "agent-2", "agent-3", "agent-4", "agent-5"},
			statuses: slices.Repeat([]string{"created"}, n)},
		{name: "one template, at once", scripts: func(t *testing.T) []string {
			s, err := upsertRequest(pythonTemplate(digestA), Options{})
			if err != nil {
				t.Fatal(err)
			}
			return slices.Repeat([]string{s}, n)
		}, names: []string{"python-agent"}, statuses: append([]string{"created"}, slices.Repeat([]string{"unchanged"}, n-1)...)},
		{name: "removals and registrations", before: func(t *testing.T) []string {
			return register(t, "agent-0", "agent-1", "agent-2")
		}, scripts: func(t *testing.T) []string {
			return append(remove(t, "agent-0", "agent-1", "agent-1"), register(t, "agent-3", "agent-4", "agent-5")...)
		}, names: []string{"agent-2", "agent-3", "agent-4", "agent-5"},
			statuses: []string{"created", "created", "created", "removed", "removed", "unchanged"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: withOtherTemplate()})
			if tc.before != nil {
				if _, err := srv.RunConcurrently(tc.before(t)); err != nil {
					t.Fatal(err)
				}
			}
			outs, err := srv.RunConcurrently(tc.scripts(t))
			if err != nil {
				t.Fatal(err)
			}
			var statuses []string
			for i, out := range outs {
				r, err := parseResult(fmt.Sprintf("script %d", i), out)
				if err != nil {
					t.Fatal(err)
				}
				statuses = append(statuses, r.Status)
			}
			slices.Sort(statuses)
			if !slices.Equal(statuses, tc.statuses) {
				t.Errorf("statuses %q, want %q", statuses, tc.statuses)
			}
			var names []string
			for _, c := range srv.State().Clouds {
				for _, tm := range c.Templates {
					names = append(names, fmt.Sprint(tm["name"]))
				}
			}
			slices.Sort(names)
			if want := append([]string{"maven"}, tc.names...); !slices.Equal(names, slices.Sorted(slices.Values(want))) {
				t.Errorf("templates %s, want %s", strings.Join(names, " "), strings.Join(want, " "))
			}
		})
	}
}
