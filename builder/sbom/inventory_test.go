package sbom

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The inventory carries the keyrings apt in the image trusts, as the last
// layer leaves them, and no other keyring: an update check authenticates
// the archive's indexes with them (apt-secure(8)).
func TestReadInventory_AptKeyrings(t *testing.T) {
	base := []entry{
		fileEntry("etc/os-release", debianOS),
		fileEntry(statusPath, status(stanza("bash", "5.2.15-2+b2", "amd64"))),
		fileEntry("etc/apt/trusted.gpg", "legacy"),
		fileEntry("etc/apt/trusted.gpg.d/debian-archive-trixie-automatic.asc", "asc"),
		fileEntry("etc/apt/trusted.gpg.d/local.gpg", "gpg"),
		fileEntry("etc/apt/trusted.gpg.d/notes.txt", "not a keyring"),
		fileEntry("etc/apt/trusted.gpg.d/sub/deeper.gpg", "not apt's"),
		fileEntry("usr/share/keyrings/debian-archive-keyring.pgp", "pgp"),
		fileEntry("usr/share/keyrings/debian-archive-removed-keys.pgp", "removed: never trusted"),
		fileEntry("usr/share/keyrings/nodesource.gpg", "another repository's"),
		symlink("usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring.pgp"),
	}
	for _, tc := range []struct {
		name   string
		layers [][]entry
		want   []string
	}{
		{"apt's defaults and the archive keyring", [][]entry{base},
			[]string{"/etc/apt/trusted.gpg", "/etc/apt/trusted.gpg.d/debian-archive-trixie-automatic.asc", "/etc/apt/trusted.gpg.d/local.gpg", "/usr/share/keyrings/debian-archive-keyring.pgp"}},
		{"a later layer removes one and replaces another", [][]entry{base, {
			whiteout("etc/apt/trusted.gpg"), symlink("etc/apt/trusted.gpg.d/local.gpg", "/tmp/x"),
		}}, []string{"/etc/apt/trusted.gpg.d/debian-archive-trixie-automatic.asc", "/usr/share/keyrings/debian-archive-keyring.pgp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := writeLayout(t, t.TempDir(), testImage{Layers: tc.layers})
			inv, err := ReadInventory(context.Background(), ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(maps.Keys(inv.AptKeyrings))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("keyrings %q, want %q", got, tc.want)
			}
			if string(inv.AptKeyrings["/usr/share/keyrings/debian-archive-keyring.pgp"]) != "pgp" {
				t.Errorf("content %q", inv.AptKeyrings["/usr/share/keyrings/debian-archive-keyring.pgp"])
			}
		})
	}
}

// A keyring is read for the update check only: one too large to be a
// keyring apt would load (a mistake, a hostile base) is left out rather
// than failing the SBOM and the inventory, which did not read keyrings
// before.
func TestReadInventory_OversizedKeyringIsLeftOut(t *testing.T) {
	big := strings.Repeat("x", maxKeyringSize+1)
	ref := writeLayout(t, t.TempDir(), testImage{Layers: [][]entry{{
		fileEntry("etc/os-release", debianOS),
		fileEntry(statusPath, status(stanza("bash", "5.2.15-2+b2", "amd64"))),
		fileEntry("etc/apt/trusted.gpg.d/huge.gpg", big),
		fileEntry("usr/share/keyrings/debian-archive-keyring.pgp", "pgp"),
	}}})
	inv, err := ReadInventory(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(inv.AptKeyrings)); !slices.Equal(got, []string{"/usr/share/keyrings/debian-archive-keyring.pgp"}) {
		t.Fatalf("keyrings %q", got)
	}
}
