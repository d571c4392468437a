package main

import (
	"github.com/agentforge/agentforge/builder/image"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/spf13/cobra"
	"go.podman.io/storage"
)

func (a *app) runCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "run IMAGE -- COMMAND [ARG...]",
		Short: "Run a command in a local image (chroot isolation, host network) for a smoke check",
		Long: `Run starts a throw-away working container of a local image, runs COMMAND in it
with the image's user and working directory, streams its output, and removes
the container. It is meant for smoke checks ("python3 --version"), not for
running services: there is no network or PID isolation on chroot.`,
		Example: `  agentforge run localhost/python-agent:0.6.0-rc0 -- python3 --version`,
		Args:    args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			id, err := localID(store, argv[0])
			if err != nil {
				return err
			}
			a.printed = true
			return builder.Run(cmd.Context(), store, id, argv[1:], a.stdout, a.stderr)
		},
	}
}

// localID resolves a local image reference to its ID.
func localID(store storage.Store, name string) (string, error) {
	img, err := image.LocalImage(store, strings.TrimPrefix(name, "containers-storage:"))
	if err != nil {
		return "", err
	}
	return img.ID, nil
}
