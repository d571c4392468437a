package remote

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/redact"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/types"
	"gopkg.in/yaml.v3"
)

// Registries is the one registry configuration: how every pull, push and
// remote verification reaches a registry.
type Registries struct {
	// AuthFile is a docker config.json / containers auth.json (credential
	// helpers named there are used); empty means $REGISTRY_AUTH_FILE and the
	// usual places. A file named here must exist.
	AuthFile string
	// CAFile is a PEM bundle of extra CAs trusted for every registry.
	CAFile string
	// Insecure lists hosts (host[:port]) reached over plain HTTP or
	// without TLS verification.
	Insecure []string
	// Mirrors rewrite registry prefixes for pulls, e.g.
	// docker.io=mirror.example/docker.io. They are written to a private
	// registries.conf as mirrors of the original, so an image's recorded
	// reference (and so a build's digest) stays the same whichever mirror
	// served the bytes.
	Mirrors []Mirror
	// Retry bounds retries of registry operations.
	Retry RetryPolicy
	// Secrets, when set, receives every registry credential these hosts
	// use (passwords, identity tokens, bearer tokens), so that the caller
	// can redact them from its own output; nil means a private set.
	Secrets *redact.Set
	// Log, when set, is told of the blob reads that broke and went on
	// (see Client.OpenBlob).
	Log logrus.FieldLogger
}

// Hosts is a Registries made ready for use: the CA bundle and any
// generated registries.conf written under a folder the caller owns.
type Hosts struct {
	cfg     Registries
	dir     string
	certDir string
	conf    string
	direct  string
	policy  string
	clients sync.Map // repository -> *Client
	secrets *redact.Set
	learnt  sync.Map // host -> true, once its credentials are in secrets
}

// Open checks r and writes what c/image reads from files (CA certificates,
// registries.conf, a permissive signature policy when the system has none)
// under dir. A missing auth or CA file is errs.ErrInput.
func (r Registries) Open(dir string) (*Hosts, error) {
	h := &Hosts{cfg: r, dir: dir, secrets: r.Secrets}
	if h.secrets == nil {
		h.secrets = redact.New()
	}
	if r.AuthFile != "" {
		if err := checkAuthFile(r.AuthFile); err != nil {
			return nil, err
		}
	}
	if r.CAFile != "" {
		data, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, errs.Inputf("CA file: %w", err)
		}
		h.certDir = filepath.Join(dir, "certs")
		if err := os.MkdirAll(h.certDir, 0o700); err != nil {
			return nil, fmt.Errorf("registry configuration: %w", err)
		}
		if err := os.WriteFile(filepath.Join(h.certDir, "ca.crt"), data, 0o600); err != nil {
			return nil, fmt.Errorf("registry configuration: %w", err)
		}
	}
	if len(r.Mirrors) > 0 || len(r.Insecure) > 0 {
		h.conf = filepath.Join(dir, "registries.conf")
		if err := os.WriteFile(h.conf, []byte(r.registriesConf()), 0o600); err != nil {
			return nil, fmt.Errorf("write registries.conf: %w", err)
		}
	}
	// Pushes and verifications address one registry: they must not be
	// redirected to a mirror the machine's registries.conf names.
	h.direct = filepath.Join(dir, "registries-direct.conf")
	if err := os.WriteFile(h.direct, []byte("unqualified-search-registries = []\n"), 0o600); err != nil {
		return nil, fmt.Errorf("registry configuration: %w", err)
	}
	if _, err := os.Stat("/etc/containers/policy.json"); err != nil {
		// No system trust policy: accept what we pull. Base images are
		// checked by digest when the definition pins one.
		h.policy = filepath.Join(dir, "policy.json")
		if err := os.WriteFile(h.policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o600); err != nil {
			return nil, fmt.Errorf("registry configuration: %w", err)
		}
	}
	return h, nil
}

// Config is the configuration h was opened with.
func (h *Hosts) Config() Registries { return h.cfg }

// Retry is the retry policy for operations on these hosts.
func (h *Hosts) Retry() RetryPolicy { return h.cfg.Retry }

// For returns a fresh system context for reaching host (host[:port]):
// credentials, CA, plain HTTP or no TLS verification for insecure hosts.
// Temporary files go under the folder h was opened with.
func (h *Hosts) For(host string) *types.SystemContext {
	sys := &types.SystemContext{
		AuthFilePath:                h.cfg.AuthFile,
		DockerCertPath:              h.certDir,
		DockerRegistryUserAgent:     "agentforge",
		BigFilesTemporaryDir:        h.dir,
		SystemRegistriesConfPath:    h.direct,
		SystemRegistriesConfDirPath: filepath.Join(h.dir, "registries.conf.d"), // does not exist: no drop-ins
	}
	if slices.Contains(h.cfg.Insecure, host) {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	h.learn(host, sys)
	return sys
}

// learn records host's credentials in h's secrets, once: c/image sends
// them on its own, and its errors quote the start of a registry's error
// page, which may echo them.
func (h *Hosts) learn(host string, sys *types.SystemContext) {
	if _, done := h.learnt.LoadOrStore(host, true); done {
		return
	}
	if creds, err := config.GetCredentials(sys, host); err == nil {
		h.secrets.AddBasic(creds.Username, creds.Password)
		h.secrets.Add(creds.IdentityToken, 1)
	}
}

// Secrets is the set h records credentials in.
func (h *Hosts) Secrets() *redact.Set { return h.secrets }

// ForPull returns a system context for pulls by name, which may go to any
// host: mirrors and insecure hosts come from the generated registries.conf,
// and the signature policy from the system or a permissive one.
func (h *Hosts) ForPull() *types.SystemContext {
	sys := &types.SystemContext{
		AuthFilePath:            h.cfg.AuthFile,
		DockerCertPath:          h.certDir,
		DockerRegistryUserAgent: "agentforge",
		BigFilesTemporaryDir:    h.dir,
		SignaturePolicyPath:     h.policy,
	}
	if h.conf != "" {
		sys.SystemRegistriesConfPath = h.conf
		sys.SystemRegistriesConfDirPath = filepath.Join(h.dir, "registries.conf.d") // does not exist: no drop-ins
	}
	return sys
}

func (r Registries) registriesConf() string {
	var b strings.Builder
	b.WriteString("unqualified-search-registries = [\"docker.io\"]\n")
	seen := map[string]bool{}
	for _, m := range r.Mirrors {
		prefix := strings.TrimSuffix(m.From, "/")
		to := strings.TrimSuffix(m.To, "/")
		host, _, _ := strings.Cut(to, "/")
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = %t\n", prefix, prefix, slices.Contains(r.Insecure, prefix))
		fmt.Fprintf(&b, "[[registry.mirror]]\nlocation = %q\ninsecure = %t\n", to, slices.Contains(r.Insecure, host))
		seen[prefix] = true
	}
	for _, h := range r.Insecure {
		if !seen[h] {
			fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", h)
		}
	}
	return b.String()
}

// Mirror rewrites URLs (or registry references) starting with From to start
// with To instead.
type Mirror struct {
	From, To string
}

// UnmarshalYAML reads a mirror written "FROM=TO", as the flags take it.
func (m *Mirror) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: mirror: want PREFIX=REPLACEMENT: %w", n.Line, err)
	}
	parsed, err := ParseMirror(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*m = parsed
	return nil
}

// ParseMirror parses "FROM=TO".
func ParseMirror(s string) (Mirror, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return Mirror{}, errs.Inputf("mirror %q: want PREFIX=REPLACEMENT", s)
	}
	return Mirror{From: from, To: to}, nil
}

// Rewrite applies the first mirror whose prefix matches s.
func Rewrite(mirrors []Mirror, s string) string {
	for _, m := range mirrors {
		if strings.HasPrefix(s, m.From) {
			return m.To + strings.TrimPrefix(s, m.From)
		}
	}
	return s
}

// OpenTemp is Open on a new temporary folder, removed by the returned
// cleanup function (call it when done with every system context from h).
func (r Registries) OpenTemp() (*Hosts, func(), error) {
	dir, err := os.MkdirTemp("", "agentforge-registry-")
	if err != nil {
		return nil, nil, fmt.Errorf("registry configuration: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	h, err := r.Open(dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return h, cleanup, nil
}
