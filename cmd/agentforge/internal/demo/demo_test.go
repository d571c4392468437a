package demo

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestDebianArchive(t *testing.T) {
	cases := []struct {
		name, sources, list, want string
	}{
		{"deb822", "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\nURIs: http://deb.debian.org/debian-security\n", "", "http://mirror.example/debian"},
		{"one-line", "", "deb http://deb.debian.org/debian bookworm main\n", "http://deb.debian.org/debian"},
		{"only security", "URIs: http://deb.debian.org/debian-security\n", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.sources != "" {
				os.WriteFile(filepath.Join(dir, "debian.sources"), []byte(tc.sources), 0o644)
			}
			list := filepath.Join(dir, "sources.list")
			if tc.list != "" {
				os.WriteFile(list, []byte(tc.list), 0o644)
			}
			got, err := debianArchive(dir, list)
			if got != tc.want || (tc.want == "") != (err != nil) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// The stand-in jar is what java starts as the agent in the demo: it must
// start (java -jar, as jenkins-agent runs it), answer -version with the
// remoting version it stands in for and say that it is a stand-in, wait
// like an agent otherwise (never printing its arguments, which carry the
// secret) and end on SIGTERM as a JVM does (143). It is the same bytes
// every time. Needs java (default-jre-headless, make deps).
func TestStandInJar(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java (default-jre-headless, make deps): %v", err)
	}
	const version = "3355.v388858a_47b_33"
	data, err := standInJar(version)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := standInJar(version)
	if !bytes.Equal(data, again) {
		t.Error("the stand-in jar is not reproducible")
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open("META-INF/STAND-IN.txt")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(f)
	if !strings.Contains(string(text), "NOT the Jenkins remoting agent") {
		t.Errorf("%s", text)
	}
	jar := filepath.Join(t.TempDir(), "agent.jar")
	if err := os.WriteFile(jar, data, 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(java, "-jar", jar, "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("java -jar agent.jar -version: %v\n%s", err, out)
	}
	if got, want := string(out), version+"\n"+StandInNote+"\n"; got != want {
		t.Errorf("-version printed %q, want %q", got, want)
	}

	const secret = "0123abcdef-secret"
	cmd := exec.Command(java, "-jar", jar, "-url", "http://jenkins.example/", "-secret", secret, "-name", "agent-1")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "waiting for a signal") {
		select {
		case err := <-done:
			t.Fatalf("the stand-in agent ended by itself (%v): %s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the stand-in agent did not start: %s", stderr.String())
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the stand-in agent did not wait (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 143 {
			t.Errorf("after SIGTERM: %v, want exit status 143", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("SIGTERM took %s", d)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGTERM did not end the stand-in agent")
	}
	if all := stdout.String() + stderr.String(); strings.Contains(all, secret) || !strings.Contains(all, "NOT the Jenkins agent") {
		t.Errorf("output: %s", all)
	}

	for _, bad := range []string{"", "3355\n-secret", "3355\u00e9", strings.Repeat("9", 201)} {
		if _, err := standInJar(bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}

// lockedBuffer is a bytes.Buffer that a process writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
