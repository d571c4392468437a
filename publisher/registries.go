package publisher

import (
	"fmt"
	"os"
	"path/filepath"

	"go.podman.io/image/v5/types"
)

// Registries says how to reach registries: credentials, TLS, plain HTTP.
type Registries struct {
	// AuthFile is a docker config.json / containers auth.json (credential
	// helpers named there are used); empty means $REGISTRY_AUTH_FILE and the
	// usual places.
	AuthFile string
	// Insecure lists hosts (host[:port]) reached over plain HTTP or
	// without TLS verification.
	Insecure []string
	// CAFile is a PEM bundle of extra CAs trusted for every registry.
	CAFile string
}

// certDir writes CAFile where c/image looks for it (a folder of *.crt) under
// work, and returns that folder; "" when there is no CAFile.
func (r Registries) certDir(work string) (string, error) {
	if r.CAFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(r.CAFile)
	if err != nil {
		return "", &InputError{fmt.Sprintf("--ca-file: %v", err)}
	}
	dir := filepath.Join(work, "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "ca.crt"), data, 0o600)
}

// systemContext returns a fresh system context for one host.
func (r Registries) systemContext(host, certDir string) *types.SystemContext {
	sys := &types.SystemContext{AuthFilePath: r.AuthFile, DockerRegistryUserAgent: "agentforge"}
	for _, h := range r.Insecure {
		if h == host {
			sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
		}
	}
	sys.DockerCertPath = certDir
	return sys
}

// SystemContext returns a system context for reaching host with r (auth,
// CA, insecure), for callers outside this package, and a cleanup function.
func (r Registries) SystemContext(host string) (*types.SystemContext, func(), error) {
	dir, err := os.MkdirTemp("", "agentforge-registry-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	certs, err := r.certDir(dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	sys := r.systemContext(host, certs)
	sys.BigFilesTemporaryDir = dir
	return sys, cleanup, nil
}
