package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		code := run(args, &stdout, tty)
		tty.Close()
		return code, string(<-read)
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
}
