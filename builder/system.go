package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.podman.io/image/v5/types"
	"golang.org/x/sys/unix"
)

// RegistryOptions says how to reach registries when pulling base images.
type RegistryOptions struct {
	// Mirrors rewrite registry prefixes, e.g. docker.io=mirror.example/docker.io.
	// They are written to a private registries.conf as mirrors of the
	// original, so the image's recorded FROM reference (and so its digest)
	// stays the same whichever mirror served the bytes.
	Mirrors []Mirror
	// Insecure lists hosts (host[:port]) reached over plain HTTP or without
	// TLS verification.
	Insecure []string
	// AuthFile is a docker config.json / containers auth.json; empty means
	// the usual places ($REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.docker/config.json).
	AuthFile string
	// CAFile is a PEM bundle of extra CAs trusted for registries.
	CAFile string
}

// systemContext builds the c/image system context for pulls, writing any
// generated configuration under dir.
func (o RegistryOptions) systemContext(dir, cacheDir string) (*types.SystemContext, error) {
	sys := &types.SystemContext{
		AuthFilePath:         o.AuthFile,
		BigFilesTemporaryDir: dir,
		BlobInfoCacheDir:     cacheDir,
	}
	if o.CAFile != "" {
		certs := filepath.Join(dir, "certs")
		if err := os.MkdirAll(certs, 0o700); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, inputErrorf("--ca-file: %v", err)
		}
		if err := os.WriteFile(filepath.Join(certs, "ca.crt"), data, 0o600); err != nil {
			return nil, err
		}
		sys.DockerCertPath = certs
	}
	if len(o.Mirrors) > 0 || len(o.Insecure) > 0 {
		conf := filepath.Join(dir, "registries.conf")
		if err := os.WriteFile(conf, []byte(o.registriesConf()), 0o600); err != nil {
			return nil, fmt.Errorf("write registries.conf: %w", err)
		}
		sys.SystemRegistriesConfPath = conf
		sys.SystemRegistriesConfDirPath = filepath.Join(dir, "registries.conf.d") // does not exist: no drop-ins
	}
	if _, err := os.Stat("/etc/containers/policy.json"); err != nil {
		// No system trust policy: accept what we pull. Base images are
		// checked by digest when the definition pins one.
		policy := filepath.Join(dir, "policy.json")
		if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o600); err != nil {
			return nil, err
		}
		sys.SignaturePolicyPath = policy
	}
	return sys, nil
}

func (o RegistryOptions) registriesConf() string {
	var b strings.Builder
	b.WriteString("unqualified-search-registries = [\"docker.io\"]\n")
	insecure := map[string]bool{}
	for _, h := range o.Insecure {
		insecure[h] = true
	}
	seen := map[string]bool{}
	for _, m := range o.Mirrors {
		prefix := strings.TrimSuffix(m.From, "/")
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\n", prefix, prefix)
		fmt.Fprintf(&b, "[[registry.mirror]]\nlocation = %q\ninsecure = %t\n", strings.TrimSuffix(m.To, "/"), insecure[hostOf(m.To)])
		seen[prefix] = true
	}
	for _, h := range o.Insecure {
		if !seen[h] {
			fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", h)
		}
	}
	return b.String()
}

func hostOf(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}

// currentUlimits pins nofile and nproc at the current hard limits. As root,
// buildah otherwise raises them to 1048576, which fails without
// CAP_SYS_RESOURCE.
func currentUlimits() []string {
	var out []string
	for _, l := range []struct {
		name string
		res  int
	}{{"nofile", unix.RLIMIT_NOFILE}, {"nproc", unix.RLIMIT_NPROC}} {
		var rl unix.Rlimit
		if unix.Getrlimit(l.res, &rl) == nil && rl.Max != unix.RLIM_INFINITY {
			out = append(out, fmt.Sprintf("%s=%d:%d", l.name, rl.Max, rl.Max))
		}
	}
	return out
}
