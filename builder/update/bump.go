package update

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/sirupsen/logrus"
	"github.com/ulikunitz/xz"
)

// BumpOptions tune Bump.
type BumpOptions struct {
	// Fetcher downloads and checks what a bump adopts (a new CPython
	// tarball, a new remoting jar) exactly as a build would. Required.
	Fetcher *source.Fetcher
	// PythonSHA256 is the new CPython tarball's sha256 when python.org
	// publishes no sigstore bundle for it.
	PythonSHA256 string
	// Checked is the definition the findings were worked out from (as
	// Check read it, with outdated --set's overrides if any). A finding
	// worked out from a value the file no longer holds is refused and
	// nothing is written: the file changed after Check read it, or, with
	// Overridden, an override (another python.version's series, another
	// base.image's digest) led to it, and adopting it would write what
	// the override leads to, not what the file does (bad input). Nil:
	// the definition as Bump reads it.
	Checked *images.Definition
	// Overridden says Checked was loaded with overrides.
	Overridden bool
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
	// Status is bumped, would-bump (dry run) or current (nothing newer
	// adopted).
	Status  string            `json:"status"`
	Changes []Change          `json:"changes"`
	Set     map[string]string `json:"set,omitempty"`
	// Failed are the kinds that were not adopted because a check failed
	// (see Bump); Bump's error joins their errors.
	Failed []Problem `json:"failed,omitempty"`
}

// Bump adopts every outdated finding in the definition folder dir: each
// new download is fetched and checked first (the CPython tarball's sha256
// and OpenPGP signature, the remoting jar's published checksum), and only
// then are the values written, all at once (images.EditDefinition). Each
// kind stands alone: one whose check fails (an *errs.IntegrityError for a
// download that does not match) is not adopted and is listed in Failed,
// and the others still are, so that a CPython tarball python.org serves
// wrong never holds back an OS security update; the error returned joins
// the failures, with their class. A value the definition cannot take
// leaves it as it was. Values a finding sets that the definition already
// has are not changes: when nothing else is left, the status is current
// and nothing is written.
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
	if opts.Checked != nil {
		for _, f := range findings {
			if !f.Outdated || len(f.Set) == 0 {
				continue
			}
			was, is := inputs(opts.Checked, f), inputs(def, f)
			for _, k := range slices.Sorted(maps.Keys(was)) {
				switch {
				case was[k] == is[k]:
				case opts.Overridden:
					return nil, errs.Inputf("bump %s: %s was worked out from %s %q, but the file has %q (an override?): bump writes only what the file itself leads to; nothing was written", dir, f.Kind, k, was[k], is[k])
				default:
					return nil, fmt.Errorf("bump %s: %s was worked out from %s %q, but the file has %q now: the file changed meanwhile (nothing was written; run it again)", dir, f.Kind, k, was[k], is[k])
				}
			}
		}
	}
	rep := &BumpReport{Definition: dir, Status: "current", Changes: []Change{}, Set: map[string]string{}}
	for _, f := range findings {
		if !f.Outdated || len(f.Set) == 0 {
			continue
		}
		c, set, err := adopt(ctx, fsys, name, def, f, opts)
		if err != nil {
			rep.Failed = append(rep.Failed, Problem{Kind: f.Kind, Error: err.Error(), err: err})
			continue
		}
		if c == nil {
			continue
		}
		rep.Changes = append(rep.Changes, *c)
		for k, v := range set {
			if v != def.Value(k) {
				rep.Set[k] = v
			}
		}
	}
	failed := rep.failures()
	if len(rep.Changes) == 0 {
		return rep, failed
	}
	if opts.DryRun {
		rep.Status = "would-bump"
		return rep, failed
	}
	edit := images.Edit{Variables: maps.Clone(rep.Set), BaseDigest: rep.Set["base.digest"], Expect: map[string]string{}}
	delete(edit.Variables, "base.digest")
	for k := range rep.Set {
		edit.Expect[k] = def.Value(k)
	}
	// A new base digest belongs to the image it was looked up for: an
	// edit of base.image while other kinds downloaded leaves it unwritten.
	if slices.ContainsFunc(rep.Changes, func(c Change) bool { return c.Kind == KindBase }) {
		edit.Expect["base.image"] = def.Base.Image
	}
	if err := images.EditDefinition(dir, edit); err != nil {
		return rep, errors.Join(err, failed)
	}
	rep.Status = "bumped"
	if opts.Log != nil {
		for _, c := range rep.Changes {
			opts.Log.Infof("%s: %s %s -> %s (%s)", dir, c.Kind, c.From, c.To, strings.Join(c.Checks, ", "))
		}
	}
	return rep, failed
}

// failures joins the errors of the kinds not adopted, each named by its
// kind (nil when none failed).
func (r *BumpReport) failures() error {
	var all []error
	for _, p := range r.Failed {
		all = append(all, fmt.Errorf("%s not adopted: %w", p.Kind, p.err))
	}
	return errors.Join(all...)
}

// adopt checks what finding f would set in the definition def (name in
// fsys) and returns the change and the values to write; a nil change
// when the definition has them already.
func adopt(ctx context.Context, fsys fs.FS, name string, def *images.Definition, f Finding, opts BumpOptions) (*Change, map[string]string, error) {
	set := maps.Clone(f.Set)
	if f.Kind == KindCPython {
		if opts.PythonSHA256 != "" {
			set["python.sha256"] = opts.PythonSHA256
		}
		if set["python.sha256"] == "" {
			return nil, nil, fmt.Errorf("python.org publishes no sigstore bundle for %s: check the tarball's sha256 yourself and give it (--sha256)", f.Latest)
		}
	}
	_, pin := set[RemotingSHA256]
	pin = pin && f.Kind == KindRemoting
	if !pin && !changes(def, set) {
		return nil, nil, nil
	}
	c := &Change{Kind: f.Kind, From: f.Current, To: f.Latest}
	// A pin is left out of the check's download (the old one names the
	// old jar) and filled in from the jar the check accepted.
	got, err := check(ctx, fsys, name, f.Kind, set, opts.Fetcher)
	if err != nil {
		return nil, nil, err
	}
	if pin {
		set[RemotingSHA256] = got.SHA256
		if !changes(def, set) {
			return nil, nil, nil
		}
		got.Checks = append(got.Checks, "sha256 "+got.SHA256+" pinned")
	}
	if got != nil && f.Kind == KindCPython && opts.PythonSHA256 == "" && got.SignedBy == "" {
		// The sha256 is the sigstore bundle's claim, served by the
		// tarball's own server: without the OpenPGP check nothing
		// checked it, and it would be pinned for every build after.
		why := "the definition's python source names no OpenPGP signature"
		if got.SignatureSkipped {
			why = "its OpenPGP check is skipped (--skip-signature python)"
		}
		return nil, nil, errs.Inputf("python %s: %s, so nothing checks the sha256 python.org's sigstore bundle states: check the tarball yourself and give its sha256 (--sha256)", f.Latest, why)
	}
	if got != nil {
		c.Checks = got.Checks
	}
	return c, set, nil
}

// inputs are the values of def that finding f was worked out from: those
// it sets, and what its kind looks up with (the base's image, the
// source's URL).
func inputs(def *images.Definition, f Finding) map[string]string {
	in := map[string]string{}
	for k := range f.Set {
		in[k] = def.Value(k)
	}
	switch f.Kind {
	case KindBase:
		in["base.image"] = def.Base.Image
	case KindCPython, KindRemoting:
		name := map[string]string{KindCPython: "python", KindRemoting: "remoting"}[f.Kind]
		if i := slices.IndexFunc(def.Sources, func(s images.Source) bool { return s.Name == name }); i >= 0 {
			in["the "+name+" source's url"] = def.Sources[i].URL
		}
	}
	return in
}

// changes reports whether set has a value the definition does not have
// already.
func changes(def *images.Definition, set map[string]string) bool {
	for k, v := range set {
		if v != def.Value(k) {
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
	if kind == KindCPython {
		// The signature covers the bytes, not the URL they were served
		// at: an older release's tarball and genuine signature replayed
		// under the new version's URL pass it. CPython's tarballs unpack
		// into Python-VERSION/, which binds them to their version.
		want := "Python-" + next.Vars["python.version"]
		top, err := tarballFolder(got.Path)
		if err != nil {
			// Checked bytes that are no tarball are not what python.org
			// publishes under that name, as much as another version's.
			return nil, &errs.IntegrityError{What: fmt.Sprintf("source %q (%s)", wanted, got.From), Check: err.Error()}
		}
		if top != want {
			return nil, &errs.IntegrityError{What: fmt.Sprintf("source %q (%s)", wanted, got.From), Check: "tarball folder", Expected: want, Actual: top}
		}
		got.Checks = append(got.Checks, "unpacks into "+want+"/")
	}
	return &got, nil
}

// tarballFolder is the top folder of the first entry of the tar archive
// at path, compressed with gzip or xz (told by their magic numbers), past
// a pax global header and a "./" entry; a first entry that is a file at
// the top is named with " (a file)".
func tarballFolder(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(6)
	var r io.Reader
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("tarball: %w", err)
		}
		defer gz.Close()
		r = gz
	case bytes.Equal(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("tarball: %w", err)
		}
		r = xr
	default:
		return "", errors.New("tarball: neither gzip nor xz")
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("tarball: %w", err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeXGlobalHeader || name == "" || name == "." {
			continue // tar -C DIR . starts with DIR itself
		}
		top, _, inside := strings.Cut(name, "/")
		if !inside && hdr.Typeflag != tar.TypeDir {
			return top + " (a file)", nil // unpacks into no folder
		}
		return top, nil
	}
}
