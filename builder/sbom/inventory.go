package sbom

import (
	"context"
	"fmt"

	"go.podman.io/image/v5/types"
)

// Deb is a dpkg package installed in an image.
type Deb struct {
	Name, Version, Architecture string
	// Source is the source package's name ("" when it is Name).
	Source string
	// Hold is dpkg's selection "hold" (apt-mark hold): apt-get upgrade
	// leaves the package as it is.
	Hold bool
}

// Inventory is what an image's own files say about its operating system
// and packages, read from its layers (the image is never run).
type Inventory struct {
	// OS is os-release's ID ("debian", "ubuntu"), Version its VERSION_ID
	// and Codename its VERSION_CODENAME ("trixie", "noble").
	OS, Version, Codename string
	// Debs are the dpkg packages, sorted by name and architecture.
	Debs []Deb
	// AptKeyrings are the keyrings apt in the image trusts to sign its
	// archives (binary or armored OpenPGP), by path from the root:
	// /etc/apt/trusted.gpg, /etc/apt/trusted.gpg.d/*.gpg and *.asc, and
	// /usr/share/keyrings' debian- or ubuntu-archive-keyring. A keyring
	// that is a symbolic link is not followed.
	AptKeyrings map[string][]byte
}

// ReadInventory reads ref's os-release and dpkg database the way Generate
// does (layers in order, whiteouts honoured, size-capped).
func ReadInventory(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (*Inventory, error) {
	img, err := readImage(ctx, ref, sys, DefaultMaxFileSize, DefaultMaxTotalSize)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	vals := osReleaseValues(img.view)
	inv := &Inventory{OS: vals["ID"], Version: vals["VERSION_ID"], Codename: vals["VERSION_CODENAME"]}
	debs, err := dpkgPackages(img.view)
	if err != nil {
		return nil, fmt.Errorf("inventory of %s: %w", img.name, err)
	}
	for _, d := range debs {
		inv.Debs = append(inv.Debs, Deb{Name: d.Name, Version: d.Version, Architecture: d.Architecture, Source: d.Source, Hold: d.Hold})
	}
	for p, f := range img.view.files {
		if aptKeyring(p) {
			if inv.AptKeyrings == nil {
				inv.AptKeyrings = map[string][]byte{}
			}
			inv.AptKeyrings["/"+p] = f.data
		}
	}
	return inv, nil
}
