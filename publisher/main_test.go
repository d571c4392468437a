package publisher

import (
	"os"
	"testing"

	"go.podman.io/storage/pkg/reexec"
)

// Writing layers into containers-storage re-executes the test binary
// (c/storage's chrootarchive): it must handle that first.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}
