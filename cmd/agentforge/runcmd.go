package main

import (
	"fmt"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/spf13/cobra"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

func (a *app) runCommand() *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "run IMAGE -- COMMAND [ARG...]",
		Short: "Run a command in a local image (chroot isolation, host network) for a smoke check",
		Long: `Run starts a throw-away working container of a local image, runs COMMAND in it
with the image's user and working directory, streams its output, and removes
the container. It is meant for smoke checks ("python3 --version"), not for
running services: there is no network or PID isolation on chroot.

For a manifest list (build --platform with several), --platform picks the
platform's image (default: this machine's); a foreign one runs under
qemu-user emulation.`,
		Example: `  agentforge run localhost/python-agent:0.6.0-rc0 -- python3 --version
  agentforge run localhost/busybox-demo:1.0.0 --platform linux/arm64 -- uname -m`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			store, err := a.openStore()
			if err != nil {
				return err
			}
			defer a.closeStore(store)
			id, err := localPlatformID(store, argv[0], platform)
			if err != nil {
				return err
			}
			a.printed = true
			return builder.Run(cmd.Context(), store, id, argv[1:], a.stdout, a.stderr)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "for a manifest list, the platform's image to run, os/arch (default: this machine's)")
	return cmd
}

// localPlatformID resolves a local image, or a manifest list's image for
// platform, to an image ID.
func localPlatformID(store storage.Store, name, platform string) (string, error) {
	list, err := oci.ReadLocalList(store, strings.TrimPrefix(name, "containers-storage:"))
	if err != nil {
		return "", err
	}
	if list == nil {
		if platform != "" {
			return "", errs.Inputf("--platform: %s is a single image, not a manifest list", name)
		}
		return localID(store, name)
	}
	if platform == "" {
		platform = oci.HostPlatform().String()
	}
	p, err := oci.ParsePlatform(platform)
	if err != nil {
		return "", err
	}
	child, err := list.Child(p.String())
	if err != nil {
		return "", errs.Inputf("--platform: %s: %w", name, err)
	}
	if err := builder.CheckEmulation(p); err != nil {
		return "", err
	}
	img, err := istorage.Transport.GetStoreImage(store, child.Ref)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, platform, err)
	}
	return img.ID, nil
}

// localID resolves a local image reference to its ID.
func localID(store storage.Store, name string) (string, error) {
	img, err := oci.LocalImage(store, strings.TrimPrefix(name, "containers-storage:"))
	if err != nil {
		return "", err
	}
	return img.ID, nil
}
