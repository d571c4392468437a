package builder

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func TestExplainMissingTool(t *testing.T) {
	lib := errors.New(`creating build container: could not find "netavark" in one of [/usr/local/libexec/podman /usr/lib/podman]. To resolve this error, set the helper_binaries_dir key in the ` + "`[engine]`" + ` section of containers.conf to the directory containing your helper binaries.`)
	for _, tc := range []struct {
		name    string
		err     error
		tool    string
		pkg     string
		message string
	}{
		{"netavark", fmt.Errorf("build x: %w", lib), "netavark", "netavark", `install the Debian package "netavark"`},
		{"pasta", errors.New(`could not find "pasta" in one of [/a]`), "pasta", "passt", `apt-get install passt`},
		{"unknown helper", errors.New(`could not find "frobnicate" in one of [/a]`), "frobnicate", "", `"frobnicate" is not installed`},
		{"other error", errors.New("no space left on device"), "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explainMissingTool(tc.err)
			var mt *MissingToolError
			if !errors.As(got, &mt) {
				if tc.tool != "" {
					t.Fatalf("not a MissingToolError: %v", got)
				}
				if got != tc.err {
					t.Fatalf("other errors pass through unchanged, got %v", got)
				}
				return
			}
			if mt.Tool != tc.tool || mt.Package != tc.pkg {
				t.Errorf("tool %q package %q, want %q %q", mt.Tool, mt.Package, tc.tool, tc.pkg)
			}
			if !strings.Contains(got.Error(), tc.message) || strings.Contains(got.Error(), "containers.conf") {
				t.Errorf("message %q: want %q and no containers.conf advice", got, tc.message)
			}
			if !errors.Is(got, tc.err) {
				t.Error("the library's error is lost")
			}
		})
	}
}

func TestLookTool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := LookTool("debootstrap")
	var mt *MissingToolError
	if !errors.As(err, &mt) || mt.Package != "debootstrap" || !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("LookTool: %v", err)
	}
	if !strings.Contains(err.Error(), "apt-get install debootstrap") {
		t.Errorf("message %q", err)
	}
}
