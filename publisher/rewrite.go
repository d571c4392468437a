package publisher

import (
	"context"
	"os"

	"fmt"
	"regexp"
	"strings"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
)

// Change is one image reference found in a file.
type Change struct {
	File string `json:"file"`
	Line int    `json:"line"`
	From string `json:"from"`
	// To is the mirrored reference; empty when no mirror covers it.
	To string `json:"to,omitempty"`
}

// Rewriter rewrites image references in Containerfiles/Dockerfiles,
// Kubernetes YAML and Jenkinsfiles to their mirror form.
type Rewriter struct {
	// Mirrors map a registry (or registry/path prefix) to the mirror that
	// serves it, DaoCloud style: docker.io=mirror.example/docker.io.
	Mirrors []remote.Mirror
	// Pin resolves each mirrored reference's digest from the mirror and
	// appends it (repo:tag@sha256:…).
	Pin bool
	// Hosts reach the mirrors when pinning.
	Hosts *remote.Hosts
}

// The places an image reference appears. Group 2 is the reference.
var refPatterns = []*regexp.Regexp{
	// Containerfile: FROM [--platform=…] IMAGE [AS name]
	regexp.MustCompile(`(?i)^(\s*FROM\s+(?:--\S+\s+)*)([^\s$]+)`),
	// Containerfile: COPY --from=IMAGE
	regexp.MustCompile(`(?i)^(\s*COPY\s+(?:--\S+\s+)*--from=)([^\s$]+)`),
	// YAML (Kubernetes, JCasC, pod templates in Jenkinsfiles): image: IMAGE
	regexp.MustCompile(`^(\s*(?:-\s+)?image:\s*["']?)([^\s"'$#]+)`),
	// Jenkinsfile: image 'IMAGE' (docker agent), docker.image('IMAGE'), image: 'IMAGE' (containerTemplate)
	regexp.MustCompile(`((?:\bimage\s*[:(]?\s*|docker\.image\(\s*)["'])([^"'\s$]+)`),
}

// Rewrite returns the new content of a file and the references it found.
// References already on a mirror are left alone; those no mirror covers are
// returned with an empty To.
func (r *Rewriter) Rewrite(ctx context.Context, file string, content []byte) ([]byte, []Change, error) {
	lines := strings.SplitAfter(string(content), "\n")
	stages := map[string]bool{}
	var changes []Change
	for i, line := range lines {
		if m := regexp.MustCompile(`(?i)^\s*FROM\s+.*\s+AS\s+(\S+)`).FindStringSubmatch(line); m != nil {
			stages[strings.ToLower(m[1])] = true
		}
		for _, re := range refPatterns {
			loc := re.FindStringSubmatchIndex(line)
			if loc == nil {
				continue
			}
			old := line[loc[4]:loc[5]]
			if old == "scratch" || stages[strings.ToLower(old)] || strings.Contains(old, "{") {
				break
			}
			named, err := reference.ParseNormalizedNamed(old)
			if err != nil {
				break // not an image reference (a stage name, a variable)
			}
			c := Change{File: file, Line: i + 1, From: old}
			if r.onMirror(named) {
				break
			}
			to, ok := r.mirrored(named)
			if ok && r.Pin {
				if to, err = r.pin(ctx, to); err != nil {
					return nil, nil, fmt.Errorf("%s:%d: %w", file, i+1, err)
				}
			}
			if ok {
				c.To = to
				lines[i] = line[:loc[4]] + to + line[loc[5]:]
			}
			changes = append(changes, c)
			break
		}
	}
	return []byte(strings.Join(lines, "")), changes, nil
}

// mirrored returns the mirror form of a normalized reference: that of
// the mirror with the longest prefix covering its repository, as
// registries.conf picks a pull's mirror.
func (r *Rewriter) mirrored(named reference.Named) (string, bool) {
	full := named.String() // docker.io/library/ubuntu:24.04
	best := -1
	for i, m := range r.Mirrors {
		from := strings.TrimSuffix(m.From, "/")
		if covers(from, named) && (best < 0 || len(from) > len(strings.TrimSuffix(r.Mirrors[best].From, "/"))) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	from, to := strings.TrimSuffix(r.Mirrors[best].From, "/"), strings.TrimSuffix(r.Mirrors[best].To, "/")
	return to + strings.TrimPrefix(full, from), true
}

// onMirror reports whether a reference already points into a mirror.
func (r *Rewriter) onMirror(named reference.Named) bool {
	for _, m := range r.Mirrors {
		if covers(strings.TrimSuffix(m.To, "/"), named) {
			return true
		}
	}
	return false
}

// covers reports whether prefix (a registry, a namespace, a repository or
// one tag of it) covers named: it is the repository's name or ends where
// one of its path components does, or it is the whole reference up to
// its digest, as c/image's registries.conf prefixes match
// (refMatchingPrefix: a prefix ends at "/", ":" or "@"), so that
// docker.io/library/ubuntu covers ubuntu:24.04 but not ubuntu-debootstrap,
// and docker.io/library/ubuntu:24.04 covers ubuntu:24.04@sha256:… but not
// ubuntu:24.040.
func covers(prefix string, named reference.Named) bool {
	name, full := named.Name(), named.String()
	return prefix != "" && (name == prefix || strings.HasPrefix(name, prefix+"/") ||
		full == prefix || strings.HasPrefix(full, prefix+"@"))
}

// pin appends the digest the mirror serves for ref.
func (r *Rewriter) pin(ctx context.Context, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	if _, ok := named.(reference.Digested); ok {
		return ref, nil
	}
	iref, err := docker.NewReference(reference.TagNameOnly(named))
	if err != nil {
		return "", err
	}
	if r.Hosts == nil {
		return "", errs.Inputf("rewrite: pinning needs a registry configuration (Rewriter.Hosts)")
	}
	d, err := docker.GetDigest(ctx, r.Hosts.For(reference.Domain(named)), iref)
	if err != nil {
		return "", fmt.Errorf("resolve %s on the mirror: %w", ref, err)
	}
	return ref + "@" + d.String(), nil
}

// RewriteReport is what RewriteFiles found and did.
type RewriteReport struct {
	// Changes are the references rewritten (or, without write, to be).
	Changes []Change `json:"changes"`
	// Unmirrored are references to registries no mirror covers.
	Unmirrored []Change `json:"unmirrored"`
	// Written are the files written back.
	Written []string `json:"written"`
}

// RewriteFiles rewrites the image references in each file (see Rewrite);
// with write, a file with changes is written back in place, keeping its
// mode. A file that cannot be read is bad input.
func (r *Rewriter) RewriteFiles(ctx context.Context, files []string, write bool) (*RewriteReport, error) {
	rep := &RewriteReport{Changes: []Change{}, Unmirrored: []Change{}, Written: []string{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return rep, errs.Input(err)
		}
		out, changes, err := r.Rewrite(ctx, f, data)
		if err != nil {
			return rep, err
		}
		changed := false
		for _, c := range changes {
			if c.To == "" {
				rep.Unmirrored = append(rep.Unmirrored, c)
			} else {
				rep.Changes = append(rep.Changes, c)
				changed = true
			}
		}
		if !write || !changed {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return rep, err
		}
		if err := os.WriteFile(f, out, st.Mode().Perm()); err != nil {
			return rep, fmt.Errorf("write %s: %w", f, err)
		}
		rep.Written = append(rep.Written, f)
	}
	return rep, nil
}
