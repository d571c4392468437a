package builder

import (
	"fmt"
	"path/filepath"

	"github.com/agentforge/agentforge/images/errs"

	"go.podman.io/storage"
)

// StoreOptions selects the containers-storage to use. Empty fields take the
// system's defaults (storage.conf; /var/lib/containers/storage for root), so
// that podman and buildah see the same images.
type StoreOptions struct {
	// Root is the graph root. When set without RunRoot, RunRoot is Root/run.
	Root string
	// RunRoot holds locks and mount state.
	RunRoot string
	// Driver is the graph driver: overlay or vfs.
	Driver string
}

// OpenStore opens (creating if needed) a containers-storage store. Callers
// must call CloseStore on every path, or overlay leaves a mount behind.
func OpenStore(o StoreOptions) (storage.Store, error) {
	opts, err := storage.DefaultStoreOptions()
	if err != nil {
		return nil, fmt.Errorf("storage defaults: %w", err)
	}
	if o.Root != "" {
		root, err := filepath.Abs(o.Root)
		if err != nil {
			return nil, fmt.Errorf("storage root %s: %w", o.Root, err)
		}
		opts.GraphRoot = root
		opts.RunRoot = filepath.Join(root, "run")
		opts.ImageStore = ""
	}
	if o.RunRoot != "" {
		opts.RunRoot = o.RunRoot
	}
	if o.Driver != "" {
		switch o.Driver {
		case "overlay", "vfs":
		default:
			return nil, errs.Inputf("storage driver %q: want overlay or vfs", o.Driver)
		}
		if o.Driver != opts.GraphDriverName {
			opts.GraphDriverOptions = nil
		}
		opts.GraphDriverName = o.Driver
	}
	store, err := storage.GetStore(opts)
	if err != nil {
		return nil, fmt.Errorf("open storage %s (%s): %w", opts.GraphRoot, opts.GraphDriverName, err)
	}
	return store, nil
}

// CloseStore shuts the store down, unmounting what is still mounted. A
// layer still in use makes the first Shutdown skip the driver cleanup; the
// second one completes it.
func CloseStore(store storage.Store) error {
	if _, err := store.Shutdown(true); err != nil {
		if _, err := store.Shutdown(true); err != nil {
			return fmt.Errorf("shut down storage %s: %w", store.GraphRoot(), err)
		}
	}
	return nil
}
