// Package signtest is what signing tests share: cosign key pairs made for
// a test, and the real cosign run against test registries (the
// independent check that what agentforge signs is what cosign accepts).
package signtest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Version is the cosign release `make bin/cosign` installs.
const Version = "v2.6.2"

// Cosign returns the path of the cosign binary: $COSIGN, else bin/cosign
// at the top of the module. A missing binary fails the test (it is not
// skipped): `make bin/cosign` installs it.
func Cosign(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs cosign: not in the short tier (make test runs it)")
	}
	p := os.Getenv("COSIGN")
	if p == "" {
		_, file, _, _ := runtime.Caller(0)
		p = filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "cosign")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("cosign is needed for this test and is not at %s (nor $COSIGN): run `make bin/cosign` (go install github.com/sigstore/cosign/v2/cmd/cosign@%s): %v", p, Version, err)
	}
	return p
}

// Env is the environment cosign runs in: the registries' credentials (a
// docker config.json, by folder), the CA bundle that signs their
// certificates, a private home, and, when set, the key's passphrase. Nothing
// of the caller's environment but PATH reaches cosign.
type Env struct {
	// AuthFile is a docker config.json (it must be named config.json).
	AuthFile string
	// CAFile is a PEM bundle trusted instead of the system's CAs.
	CAFile string
	// Passphrase is $COSIGN_PASSWORD.
	Passphrase string
	// Experimental sets COSIGN_EXPERIMENTAL=1 (needed for
	// --registry-referrers-mode=oci-1-1).
	Experimental bool
}

// Run runs cosign with args and returns its exit code and combined output.
func Run(t testing.TB, env Env, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Cosign(t), args...)
	home := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"), "COSIGN_PASSWORD=" + env.Passphrase}
	if env.AuthFile != "" {
		if filepath.Base(env.AuthFile) != "config.json" {
			t.Fatalf("signtest: the auth file must be named config.json, not %s", env.AuthFile)
		}
		cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+filepath.Dir(env.AuthFile))
	}
	if env.CAFile != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+env.CAFile)
	}
	if env.Experimental {
		cmd.Env = append(cmd.Env, "COSIGN_EXPERIMENTAL=1")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("cosign %s: %v", strings.Join(args, " "), err)
		}
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// Verify runs `cosign verify --key pub` on ref (host/repo@digest), without
// a transparency log (keys sign offline), and returns the exit code and
// output.
func Verify(t testing.TB, env Env, pub, ref string) (int, string) {
	t.Helper()
	return Run(t, env, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--output", "json", ref)
}

// VerifyAttestation runs `cosign verify-attestation --key pub --type
// typ` on ref.
func VerifyAttestation(t testing.TB, env Env, pub, typ, ref string) (int, string) {
	t.Helper()
	return Run(t, env, "verify-attestation", "--key", pub, "--type", typ, "--insecure-ignore-tlog=true", ref)
}
