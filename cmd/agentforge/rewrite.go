package main

import (
	"fmt"
	"io"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"

	"github.com/agentforge/agentforge/publisher"
	"github.com/spf13/cobra"
)

func (a *app) rewriteCommand() *cobra.Command {
	var mirrors []string
	var pin, check, write bool
	cmd := &cobra.Command{
		Use:   "rewrite --mirror REGISTRY=MIRROR FILE...",
		Short: "Rewrite image references in Containerfiles, Kubernetes YAML and Jenkinsfiles to their mirror form",
		Long: `Rewrite finds image references (FROM and COPY --from in Containerfiles and
Dockerfiles, image: in Kubernetes and JCasC YAML, image '…', docker.image('…')
and containerTemplate(image: …) in Jenkinsfiles) and rewrites those a --mirror
covers to the mirror's name for them, DaoCloud style:
docker.io/library/ubuntu:24.04 -> mirror.example/docker.io/library/ubuntu:24.04.

Without --write it only reports. --pin appends the digest the mirror serves
(@sha256:…). --check exits 1 when a file still references a registry no
mirror covers.`,
		Example: `  agentforge rewrite --mirror docker.io=mirror.example/docker.io --write Containerfile k8s/*.yaml Jenkinsfile
  agentforge rewrite --mirror docker.io=mirror.example/docker.io --check Jenkinsfile`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			hosts, err := a.hosts(nil, remote.RetryPolicy{})
			if err != nil {
				return err
			}
			rw := &publisher.Rewriter{Pin: pin, Hosts: hosts}
			if rw.Mirrors, err = parseMirrors(mirrors); err != nil {
				return fmt.Errorf("--mirror: %w", err)
			}
			if len(rw.Mirrors) == 0 {
				return errs.Inputf("give at least one --mirror REGISTRY=MIRROR")
			}
			rep, err := rw.RewriteFiles(cmd.Context(), files, write)
			if err != nil {
				return err
			}
			a.emit(rep, func(w io.Writer) {
				for _, c := range rep.Changes {
					fmt.Fprintf(w, "%s:%d: %s -> %s\n", c.File, c.Line, c.From, c.To)
				}
				for _, c := range rep.Unmirrored {
					fmt.Fprintf(w, "%s:%d: %s: no mirror for this registry\n", c.File, c.Line, c.From)
				}
				if !write && len(rep.Changes) > 0 {
					fmt.Fprintln(w, "(nothing written: --write to apply)")
				}
			})
			if check && len(rep.Unmirrored) > 0 {
				return fmt.Errorf("%d image reference(s) not on a mirror, first %s:%d %s", len(rep.Unmirrored), rep.Unmirrored[0].File, rep.Unmirrored[0].Line, rep.Unmirrored[0].From)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&mirrors, "mirror", nil, "REGISTRY=MIRROR, e.g. docker.io=mirror.example/docker.io (repeatable)")
	fl.BoolVar(&pin, "pin", false, "append the digest the mirror serves (@sha256:…)")
	fl.BoolVar(&check, "check", false, "exit 1 when a reference is not covered by a mirror")
	fl.BoolVar(&write, "write", false, "rewrite the files in place")
	return cmd
}
