package builder

import (
	"context"
	"fmt"
	"io"

	"github.com/containers/buildah"
	"github.com/containers/buildah/define"
	"go.podman.io/storage"
)

// Run runs argv in a throw-away working container of the local image
// imageID (chroot isolation, the image's user and working directory) and
// removes the container afterwards. It is meant for smoke checks such as
// "python3 --version".
func Run(ctx context.Context, store storage.Store, imageID string, argv []string, stdout, stderr io.Writer) error {
	b, err := buildah.NewBuilder(ctx, store, buildah.BuilderOptions{
		FromImage:        imageID,
		PullPolicy:       define.PullNever,
		Isolation:        define.IsolationChroot,
		CommonBuildOpts:  &define.CommonBuildOptions{Ulimit: currentUlimits()},
		ConfigureNetwork: define.NetworkDisabled,
		NetworkInterface: hostNetwork{},
	})
	if err != nil {
		return fmt.Errorf("run %v in %s: %w", argv, imageID, explainMissingTool(err))
	}
	defer b.Delete()
	err = b.Run(argv, buildah.RunOptions{
		Isolation:  define.IsolationChroot,
		Stdout:     stdout,
		Stderr:     stderr,
		Entrypoint: []string{},
	})
	if err != nil {
		return fmt.Errorf("run %v in %s: %w", argv, imageID, err)
	}
	return nil
}
