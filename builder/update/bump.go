package update

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/sirupsen/logrus"
)

// BumpOptions tune Bump.
type BumpOptions struct {
	// Fetcher downloads and checks what a bump adopts (a new CPython
	// tarball, a new remoting jar) exactly as a build would. Required.
	Fetcher *source.Fetcher
	// PythonSHA256 is the new CPython tarball's sha256 when python.org
	// publishes no sigstore bundle for it.
	PythonSHA256 string
	// DryRun checks everything and writes nothing.
	DryRun bool
	Log    logrus.FieldLogger
}

// Change is one input a bump adopted (or, dry, would adopt).
type Change struct {
	Kind string `json:"kind"`
	From string `json:"from"`
	To   string `json:"to"`
	// Checks are what was verified of the new download.
	Checks []string `json:"checks,omitempty"`
}

// BumpReport is what Bump did.
type BumpReport struct {
	Definition string `json:"definition"`
	// Status is bumped, would-bump (dry run) or current (nothing newer).
	Status  string            `json:"status"`
	Changes []Change          `json:"changes"`
	Set     map[string]string `json:"set,omitempty"`
}

// Bump adopts every outdated finding in the definition folder dir: each
// new download is fetched and checked first (the CPython tarball's sha256
// and OpenPGP signature, the remoting jar's published checksum), and only
// then are the values written, all at once (images.EditDefinition): a
// check that fails (an *errs.IntegrityError), or a value the definition
// cannot take, leaves the definition as it was. Values a finding sets that
// the definition already has are not changes: when nothing else is left,
// the status is current and nothing is written.
func Bump(ctx context.Context, dir string, findings []Finding, opts BumpOptions) (*BumpReport, error) {
	if opts.Fetcher == nil {
		return nil, errs.Inputf("bump: no fetcher to check the new downloads with")
	}
	fsys, name, err := images.Open(dir)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, "builtin:") {
		return nil, errs.Inputf("bump edits a definition folder; %s is built in (give the folder, e.g. images/python-agent in a checkout)", dir)
	}
	def, err := images.Load(fsys, name, nil)
	if err != nil {
		return nil, fmt.Errorf("bump %s: %w", dir, err)
	}
	rep := &BumpReport{Definition: dir, Status: "current", Changes: []Change{}, Set: map[string]string{}}
	for _, f := range findings {
		if !f.Outdated || len(f.Set) == 0 {
			continue
		}
		set := maps.Clone(f.Set)
		if f.Kind == KindCPython {
			if opts.PythonSHA256 != "" {
				set["python.sha256"] = opts.PythonSHA256
			}
			if set["python.sha256"] == "" {
				return rep, fmt.Errorf("python.org publishes no sigstore bundle for %s: check the tarball's sha256 yourself and give it (--sha256)", f.Latest)
			}
		}
		if !changes(def, set) {
			continue
		}
		c := Change{Kind: f.Kind, From: f.Current, To: f.Latest}
		got, err := check(ctx, fsys, name, f.Kind, set, opts.Fetcher)
		if err != nil {
			return rep, err
		}
		if got != nil && got.SignatureSkipped && f.Kind == KindCPython && opts.PythonSHA256 == "" {
			// The sha256 is the sigstore bundle's claim, served by the
			// tarball's own server: without the OpenPGP check nothing
			// checked it, and it would be pinned for every build after.
			return rep, errs.Inputf("python %s: its OpenPGP check is skipped (--skip-signature python), so nothing checks the sha256 python.org's sigstore bundle states: check the tarball yourself and give its sha256 (--sha256)", f.Latest)
		}
		if got != nil {
			c.Checks = got.Checks
		}
		rep.Changes = append(rep.Changes, c)
		for k, v := range set {
			if v != current(def, k) {
				rep.Set[k] = v
			}
		}
	}
	if len(rep.Changes) == 0 {
		return rep, nil
	}
	if opts.DryRun {
		rep.Status = "would-bump"
		return rep, nil
	}
	edit := images.Edit{Variables: maps.Clone(rep.Set), BaseDigest: rep.Set["base.digest"]}
	delete(edit.Variables, "base.digest")
	if err := images.EditDefinition(dir, edit); err != nil {
		return rep, err
	}
	rep.Status = "bumped"
	if opts.Log != nil {
		for _, c := range rep.Changes {
			opts.Log.Infof("%s: %s %s -> %s (%s)", dir, c.Kind, c.From, c.To, strings.Join(c.Checks, ", "))
		}
	}
	return rep, nil
}

// current is the definition's value of a key a finding sets: base.digest,
// else the variable's.
func current(def *images.Definition, key string) string {
	if key == "base.digest" {
		return def.Base.Digest
	}
	return def.Vars[key]
}

// changes reports whether set has a value the definition does not have
// already.
func changes(def *images.Definition, set map[string]string) bool {
	for k, v := range set {
		if v != current(def, k) {
			return true
		}
	}
	return false
}

// check fetches and checks, as a build would, the source a kind's new
// values name: the python tarball, the remoting jar. Other kinds download
// nothing.
func check(ctx context.Context, fsys fs.FS, name, kind string, set map[string]string, fetcher *source.Fetcher) (*source.Fetched, error) {
	wanted := map[string]string{KindCPython: "python", KindRemoting: "remoting"}[kind]
	if wanted == "" {
		return nil, nil
	}
	overrides := maps.Clone(set)
	delete(overrides, "base.digest")
	next, err := images.Load(fsys, name, overrides)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(next.Sources, func(s images.Source) bool { return s.Name == wanted })
	if i < 0 {
		return nil, errs.Inputf("%s: no source named %s", name, wanted)
	}
	got, err := fetcher.Fetch(ctx, next.Sources[i])
	if err != nil {
		return nil, err
	}
	return &got, nil
}
