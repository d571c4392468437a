package builder_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/buildertest"
)

// Builds with chroot isolation share the host's network, so they must not
// need a container network backend. This runs the pull, build, RUN and
// smoke-run tests again in a child process whose containers.conf insists on
// netavark and points the helper look-up at an empty folder: any look-up of
// a network backend fails there, on every machine, netavark installed or not.
func TestBuild_NoNetworkBackendNeeded(t *testing.T) {
	buildertest.Builds(t)
	if os.Getenv("AGENTFORGE_NO_NETWORK_CHILD") != "" {
		t.Skip("already the child")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	empty := filepath.Join(dir, "no-helpers")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	data := "[network]\nnetwork_backend = \"netavark\"\n[engine]\nhelper_binaries_dir = [\"" + empty + "\"]\n"
	if err := os.WriteFile(conf, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^(TestBuild_BusyboxAndVerify|TestBuild_BaseThroughRegistryMirror)$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf, "AGENTFORGE_NO_NETWORK_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("builds with no network backend available: %v\n%s", err, out)
	}
	for _, name := range []string{"TestBuild_BusyboxAndVerify", "TestBuild_BaseThroughRegistryMirror"} {
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Errorf("%s did not pass in the child:\n%s", name, out)
		}
	}
}
