package emulator

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childEnv marks a run of this test binary as the child of
// TestStart_FromEmbeddedStubsOutsideTheCheckout.
const childEnv = "AGENTFORGE_EMULATOR_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child starts an emulator and runs one script that creates a template
// through the Kubernetes-plugin stubs and reads it back, printing what
// /scriptText answered.
func child() int {
	dir, err := os.MkdirTemp("", "emulator-child-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := Start(Options{Users: []User{admin}, State: State{Clouds: []Cloud{{Kind: "kubernetes", Name: "kubernetes"}}}}, dir)
	if err != nil {
		fmt.Println("start:", err)
		return 1
	}
	defer s.Close()
	script := `import org.csanchez.jenkins.plugins.kubernetes.*
def cloud = Jenkins.get().clouds.getByName('kubernetes')
def t = new PodTemplate('embedded-id'); t.name = ' embedded '
cloud.templates = [t]; Jenkins.get().save()
println 'CHILD ' + cloud.templates*.name + ' ' + cloud.templates*.id`
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/scriptText", strings.NewReader(url.Values{"script": {script}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(admin.Name, admin.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)
	return 0
}

// The demo runs the emulator from the agentforge binary alone: the stubs
// come from the embedded files, compiled into the cache directory, with no
// source checkout. This test copies its own binary out of the tree and runs
// the emulator from it in a mount namespace where the checkout is hidden
// under an empty tmpfs, with an empty cache (so the stubs are compiled from
// what is embedded). Needs root (a mount namespace) and Groovy.
func TestStart_FromEmbeddedStubsOutsideTheCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Groovy: not in the short tier (make test runs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: hides the checkout in a mount namespace (unshare -m)")
	}
	checkout, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(checkout, "go.mod")); err != nil {
		t.Fatalf("not the module root: %s", checkout)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bin := filepath.Join(work, "emulator.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(work, "cache")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs agentforge-hidden "$1" && test ! -e "$1/go.mod" && exec "$2"`, "sh", checkout, bin)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), childEnv+"=1", "AGENTFORGE_EMULATOR_CACHE="+cache, "HOME="+work)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// setName trims (the stub's behaviour, so the plugin classes ran).
	if !strings.Contains(string(out), "CHILD [embedded] [embedded-id]") {
		t.Fatalf("child output:\n%s", out)
	}
	compiled, _ := filepath.Glob(filepath.Join(cache, "kubernetes-*", "org", "csanchez", "jenkins", "plugins", "kubernetes", "PodTemplate.class"))
	if len(compiled) != 1 {
		t.Errorf("the plugin stubs were not compiled into the empty cache %s: %v", cache, compiled)
	}
	// The checkout is back outside the namespace.
	if _, err := os.Stat(filepath.Join(checkout, "go.mod")); err != nil {
		t.Fatal(err)
	}
}
