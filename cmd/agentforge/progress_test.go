package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci/ocitest"
	"github.com/agentforge/agentforge/publisher/registrytest"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the terminal side is what the CLI
// writes to, the master side what a terminal emulator would read.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (needs /dev/ptmx): %v", err)
	}
	unlock := 0
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, unlock); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty %d: %v", n, err)
	}
	ws := unix.Winsize{Row: 40, Col: 160}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &ws)
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// On a terminal, publish draws a bar per blob pushed and per layer
// verified (redrawn in place: escape codes); in a log (a Jenkins console,
// a file) the same run writes no carriage return and no escape code, and
// --progress none draws nothing even on a terminal.
func TestCLI_ProgressBarsOnATerminalOnlyPlainLinesElsewhere(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "layout")
	ocitest.Layout(t, mkdir(t, layout), "1", ocitest.Options{Layers: 3, Size: 4 << 20})
	reg := registrytest.New(t, registrytest.Options{})
	publish := func(repo string, extra ...string) []string {
		return append([]string{"publish", "oci:" + layout + ":1", "--to", reg.Host + "/" + repo + ":1", "--insecure-registry", reg.Host, "--work-dir", t.TempDir()}, extra...)
	}

	terminal := func(args ...string) (int, string) {
		master, tty := openPTY(t)
		read := make(chan []byte)
		go func() { b, _ := io.ReadAll(master); read <- b }()
		var stdout bytes.Buffer
		exited := make(chan int, 1)
		go func() { exited <- run(args, &stdout, tty) }()
		select {
		case code := <-exited:
			tty.Close()
			return code, string(<-read)
		case <-time.After(2 * time.Minute):
			t.Fatalf("%v on a terminal did not end (a bar that never completes holds the renderer)", args)
			return 0, ""
		}
	}

	code, screen := terminal(publish("tty/app")...)
	if code != 0 {
		t.Fatalf("publish on a terminal: exit %d\n%s", code, screen)
	}
	for _, want := range []string{"push sha256:", " to " + reg.Host + "/tty/app", "verify layer 0 sha256:", "verify layer 2 sha256:", "MiB", "\x1b["} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, screen)
		}
	}

	// An uncompressed layout is compressed once (c/image's progress
	// counts what it reads, not the announced size): the bars end and the
	// publish completes.
	plain := filepath.Join(t.TempDir(), "plain")
	ocitest.Layout(t, mkdir(t, plain), "1", ocitest.Options{Layers: 2, Size: 2 << 20, Seed: 7, Uncompressed: true})
	code, screen = terminal("publish", "oci:"+plain+":1", "--to", reg.Host+"/tty/plain:1", "--insecure-registry", reg.Host, "--work-dir", t.TempDir())
	if code != 0 || !strings.Contains(screen, "compress sha256:") {
		t.Errorf("publishing an uncompressed layout on a terminal: exit %d\n%q", code, screen)
	}
	// A truncated layer ends its bar short of its size: verify still ends,
	// with the integrity failure.
	truncated := filepath.Join(t.TempDir(), "truncated")
	ocitest.Layout(t, mkdir(t, truncated), "1", ocitest.Options{Layers: 1, Size: 1 << 20, Seed: 8})
	blobs, _ := filepath.Glob(filepath.Join(truncated, "blobs", "sha256", "*"))
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > 100<<10 {
			os.Truncate(b, fi.Size()/2)
		}
	}
	if code, screen = terminal("verify", "oci:"+truncated+":1"); code != 3 {
		t.Errorf("verifying a truncated layer on a terminal: exit %d, want 3\n%q", code, screen)
	}

	code, screen = terminal(publish("none/app", "--progress", "none")...)
	if code != 0 || strings.Contains(screen, "push sha256:") || strings.Contains(screen, "verify layer") {
		t.Errorf("--progress none on a terminal: exit %d, drew bars:\n%q", code, screen)
	}

	code, _, stderr := cli(t, publish("plain/app")...)
	if code != 0 {
		t.Fatalf("publish to a log: exit %d\n%s", code, stderr)
	}
	if strings.ContainsAny(stderr, "\r\x1b") {
		t.Errorf("a log got carriage returns or escape codes:\n%q", stderr)
	}

	if code, _, stderr := cli(t, "verify", "oci:"+layout+":1", "--progress", "fancy"); code != 2 || !strings.Contains(stderr, `--progress "fancy"`) {
		t.Errorf("bad --progress: exit %d\n%s", code, stderr)
	}
	// Bars need a terminal to draw on (and to print log lines above them):
	// asking for them elsewhere is refused rather than losing log lines.
	if code, _, stderr := cli(t, "verify", "oci:"+layout+":1", "--progress", "tty"); code != 2 || !strings.Contains(stderr, "not a terminal") {
		t.Errorf("--progress tty into a file: exit %d\n%s", code, stderr)
	}
}

// A bar's name can come from a registry's answer (a layer digest not yet
// checked): control characters never reach the terminal.
func TestBarName(t *testing.T) {
	for in, want := range map[string]string{
		"verify layer 0 \x1b]0;x\x07:00": "verify layer 0 ?]0;x?:00",
		"push sha256:abc to reg/app":     "push sha256:abc to reg/app",
		strings.Repeat("é", 70):          strings.Repeat("é", 59) + "…",
	} {
		if got := barName(in); got != want {
			t.Errorf("barName(%q) = %q, want %q", in, got, want)
		}
	}
}
