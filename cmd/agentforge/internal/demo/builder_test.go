package demo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher/sign"
	"gopkg.in/yaml.v3"
)

// The demo takes make dist's folder only when its SHA256SUMS verifies with
// the public key beside it and lists this machine's binary.
func TestPrepareBuilder_Dist(t *testing.T) {
	t.Chdir(filepath.Join("..", "..", "..", "..")) // testdata/busybox is found from the checkout's top
	host := oci.HostPlatform()
	own := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  agentforge-" + host.OS + "-" + host.Arch + "\n"
	other := strings.Replace(own, host.Arch, "s390x", 1)
	priv, pub, err := sign.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.ParsePrivateKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	dist := func(t *testing.T, sums, signed string) string {
		dir := t.TempDir()
		sig, err := sign.SignBlob(context.Background(), key, []byte(signed))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums), 0o644)
		os.WriteFile(filepath.Join(dir, "SHA256SUMS.sig"), sig, 0o644)
		os.WriteFile(filepath.Join(dir, "agentforge.pub"), pub, 0o644)
		return dir
	}
	for _, tc := range []struct {
		name, sums, signed string
		integrity          bool
		wantErr            string
	}{
		{"signed, with this platform", own, own, false, ""},
		{"SHA256SUMS changed after signing", own + other, own, true, "signature"},
		{"no binary for this platform", other, other, false, "has no agentforge-" + host.OS + "-" + host.Arch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := dist(t, tc.sums, tc.signed)
			b, err := PrepareBuilder(context.Background(), dir, "v1.2.3", "localhost/base:1", "abc")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b.Set["dist"] != "file://"+dir || b.Set["version"] != "1.2.3" || b.Set["base.image"] != "localhost/base:1" {
					t.Errorf("overrides %v", b.Set)
				}
				if b.PodRun.User != "0:0" || !b.PodRun.Privileged || b.PodRun.EmptyDir != "/var/lib/containers" || len(b.PodRun.Mounts) != 1 || !strings.HasSuffix(b.PodRun.Mounts[0], "/testdata/busybox:/workspace/busybox:ro") {
					t.Errorf("pod: %+v", b.PodRun)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, errs.ErrIntegrity) != tc.integrity {
				t.Fatalf("got %v, want an error with %q (integrity %t)", err, tc.wantErr, tc.integrity)
			}
		})
	}
	if _, err := PrepareBuilder(context.Background(), t.TempDir(), "v1", "b", ""); err == nil || !strings.Contains(err.Error(), "make dist") {
		t.Errorf("an empty folder: %v", err)
	}
}

func TestParsePodBuild(t *testing.T) {
	digest := "sha256:" + strings.Repeat("d5", 32)
	for _, tc := range []struct {
		name, out string
		ok        bool
	}{
		{"result line among logs", "builder: agentforge v1\nlevel=info msg=built\nBUILD-RESULT {  \"id\": \"c55d\",  \"digest\": \"" + digest + "\",  \"seconds\": 3.7}\n", true},
		{"no result", "builder: agentforge v1\nError: build failed\n", false},
		{"not JSON", "BUILD-RESULT {\"digest\": \n", false},
		{"no digest", "BUILD-RESULT {\"id\": \"x\"}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParsePodBuild(tc.out)
			if tc.ok != (err == nil) || tc.ok && (b.Digest != digest || b.Seconds != 3.7) {
				t.Fatalf("%+v, %v", b, err)
			}
		})
	}
}

// The builder's pod template gets the image just published; everything
// else in images/agentforge/pod.yaml stays.
func TestPodYAML(t *testing.T) {
	file := filepath.Join("..", "..", "..", "..", BuilderPodYAML)
	ref := "127.0.0.1:5000/agents/agentforge@sha256:" + strings.Repeat("ab", 32)
	out, err := PodYAML(file, ref)
	if err != nil {
		t.Fatal(err)
	}
	var got, orig map[string]any
	data, _ := os.ReadFile(file)
	if yaml.Unmarshal([]byte(out), &got) != nil || yaml.Unmarshal(data, &orig) != nil {
		t.Fatal("not YAML")
	}
	c := got["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if c["image"] != ref {
		t.Errorf("image %v", c["image"])
	}
	c["image"] = orig["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]
	if !reflect.DeepEqual(got, orig) {
		t.Errorf("more than the image changed:\n%s", out)
	}
	other := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(other, []byte("spec:\n  containers:\n    - name: jnlp\n      image: x\n"), 0o644)
	if _, err := PodYAML(other, ref); err == nil {
		t.Error("a pod without the agentforge container was accepted")
	}
	if _, err := PodCommand(other); err == nil {
		t.Error("PodCommand: a pod without the agentforge container was accepted")
	}
	// PID 1 is an init that reaps what steps leave behind (the demo's pod
	// check makes it adopt one), in front of a process that waits.
	words, err := PodCommand(file)
	if err != nil || len(words) < 2 || words[0] != "catatonit" {
		t.Errorf("the builder container's command: %q, %v; want catatonit as PID 1", words, err)
	}
}

// podInitCheck is the builder pod script's PID 1 check, from its comment
// to the line it prints when PID 1 passes.
func podInitCheck(t *testing.T) string {
	t.Helper()
	start := strings.Index(builderPodScript, "# PID 1 as pod.yaml")
	if start < 0 {
		t.Fatal("builderpod.sh has no PID 1 check")
	}
	rest := builderPodScript[start:]
	end := strings.Index(rest, "\necho \"init:")
	if end < 0 {
		t.Fatal("builderpod.sh's PID 1 check prints no verdict")
	}
	line, _, _ := strings.Cut(rest[end+1:], "\n")
	return rest[:end+1] + line + "\n"
}

// processesWith lists the processes whose command line has marker.
func processesWith(marker string) []int {
	var pids []int
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(marker)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// The pod script's PID 1 check passes an init that reaps and ends on
// SIGTERM, fails (and does not hang) on one that does either not, and
// leaves nothing running behind in any case. Run as root, with unshare,
// nsenter and catatonit.
func TestBuilderPodInitCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare --pid)")
	}
	for _, tool := range []string{"bash", "unshare", "nsenter", "catatonit"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	// Root in a container without CAP_SYS_ADMIN may not make namespaces.
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid does not work here: %v: %s", err, out)
	}
	script := "set -euo pipefail\n" + podInitCheck(t)
	// Each case's sleep lasts a number of seconds no other process uses:
	// what is left of it after the check is found by that number.
	for i, tc := range []struct {
		name    string
		command []string
		ok      bool
		say     string
	}{
		{"catatonit reaps and forwards SIGTERM", []string{"catatonit", "--", "sleep", "%d"}, true, "reaped a step's background process"},
		{"sleep never reaps", []string{"sleep", "%d"}, false, "a zombie"},
		{"a shell reaps but ignores SIGTERM as PID 1", []string{"bash", "-c", "sleep %d; :"}, false, "did not end within 10 s of a SIGTERM"},
		{"PID 1 that ends at once", []string{"catatonit", "--", "true"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			marker := strconv.Itoa(86700 + i)
			words := make([]string, len(tc.command))
			for j, w := range tc.command {
				words[j] = strings.ReplaceAll(w, "%d", marker)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", script)
			cmd.Env = append(os.Environ(), "POD_COMMAND="+strings.Join(words, "\n"))
			cmd.WaitDelay = 5 * time.Second // what it left behind may hold its output open
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Errorf("the check did not end within a minute:\n%s", out)
			} else if (err == nil) != tc.ok || !strings.Contains(string(out), tc.say) {
				t.Errorf("PID 1 %q: %v, want ok=%v saying %q:\n%s", words, err, tc.ok, tc.say, out)
			}
			time.Sleep(200 * time.Millisecond) // a SIGKILLed namespace's processes end
			if left := processesWith(marker); len(left) > 0 {
				t.Errorf("left running: %v", left)
				for _, pid := range left {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
}
