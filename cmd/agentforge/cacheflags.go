package main

import (
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
)

// cacheFlags are the registry layer cache's flags: --cache-from,
// --cache-to and --cache-verify-key. Entries pushed are signed with the
// command's --sign-key (signFlags).
type cacheFlags struct {
	from      []string
	to        string
	verifyKey string
}

func (f *cacheFlags) AddFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.from, "cache-from", nil, "registry repository (host/path) to take build steps from, each under its cache key, instead of running them (repeatable; looked up in order; --registry-mirror applies)")
	fl.StringVar(&f.to, "cache-to", "", "registry repository (host/path) to push every step the build runs to, tagged with its cache key (signed with --sign-key)")
	fl.StringVar(&f.verifyKey, "cache-verify-key", "", "cosign public key: --cache-from takes only entries signed with it (others are ignored, and the log says so)")
}

// cache parses the flags into a layer cache (nil without --cache-from and
// --cache-to); signer signs the entries pushed.
func (f *cacheFlags) cache(signer sign.Signer) (*builder.LayerCache, error) {
	c, err := builder.ParseLayerCache(f.from, f.to, f.verifyKey, [3]string{"--cache-from", "--cache-to", "--cache-verify-key"})
	if err != nil {
		return nil, err
	}
	if signer != nil {
		if c == nil || c.To == nil {
			return nil, errs.Inputf("--sign-key signs the layer cache's entries here: give --cache-to")
		}
		c.Signer = signer
	}
	return c, nil
}

// printCache writes what the layer cache did, one line per step.
func printCache(w io.Writer, indent string, r *builder.CacheReport) {
	if r == nil {
		return
	}
	if r.Off != "" {
		fmt.Fprintf(w, "%scache   off: %s\n", indent, r.Off)
		return
	}
	fmt.Fprintf(w, "%scache   %d of %d steps from the cache, %d built, %d pushed\n", indent, r.Hits, len(r.Steps), r.Built, r.Pushed)
	for _, s := range r.Steps {
		note := s.From
		switch {
		case s.Pushed != "":
			note = "pushed " + s.Pushed
			if s.Signed {
				note += " (signed)"
			}
		case s.Key == "":
			note = "not cacheable: " + s.Why
		}
		fmt.Fprintf(w, "%s  %-7s %s/%d %s", indent, s.Status, s.Stage, s.Step, s.Instruction)
		if note != "" {
			fmt.Fprintf(w, "  [%s]", note)
		}
		fmt.Fprintln(w)
		for _, i := range s.Ignored {
			fmt.Fprintf(w, "%s          ignored %s\n", indent, i)
		}
	}
	if r.Unmatched != "" {
		fmt.Fprintf(w, "%s  nothing pushed: %s\n", indent, r.Unmatched)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "%s  FAILED %s\n", indent, e)
	}
}
