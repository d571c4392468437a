// Package registry runs an OCI registry in-process (distribution/v3 as a
// library), for local use, the demo and tests: filesystem storage, optional
// htpasswd authentication and TLS.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/agentforge/agentforge/images/errs"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// Registered by import: the auth and storage drivers the config names.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Config describes one registry.
type Config struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// Root holds the registry's data.
	Root string
	// Htpasswd, when set, is a bcrypt htpasswd file: basic auth is required.
	Htpasswd string
	// TLSCert and TLSKey, when both set, serve HTTPS.
	TLSCert, TLSKey string
}

// Handler builds the registry's HTTP handler.
func Handler(ctx context.Context, cfg Config) (http.Handler, error) {
	if cfg.Root == "" {
		return nil, errors.New("registry: a root directory is required")
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	c := &configuration.Configuration{}
	c.Version = "0.1"
	c.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": cfg.Root},
		"cache":      configuration.Parameters{"blobdescriptor": "inmemory"},
		"delete":     configuration.Parameters{"enabled": true},
	}
	c.HTTP.Secret = hex.EncodeToString(secret)
	if cfg.Htpasswd != "" {
		// distribution would create a missing file with a random password
		// and log that password: an existing, non-empty file is required.
		if st, err := os.Stat(cfg.Htpasswd); err != nil || st.Size() == 0 {
			return nil, errs.Inputf("htpasswd file %s: want an existing bcrypt htpasswd file (create one with htpasswd -B)", cfg.Htpasswd)
		}
		c.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "agentforge-registry", "path": cfg.Htpasswd}}
	}
	return handlers.NewApp(ctx, c), nil
}

// Server is a running registry.
type Server struct {
	// Addr is the address it listens on (host:port), usable as the registry
	// host in references.
	Addr string
	srv  *http.Server
	done chan error

	mu    sync.Mutex
	fresh map[net.Conn]bool // connections that have not begun a request
}

// track keeps the connections that have not begun a request.
func (s *Server) track(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state == http.StateNew {
		s.fresh[c] = true
	} else {
		delete(s.fresh, c)
	}
}

// Start listens on cfg.Addr and serves in the background.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	h, err := Handler(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("registry: listen %s: %w", cfg.Addr, err)
	}
	s := &Server{Addr: ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}, done: make(chan error, 1), fresh: map[net.Conn]bool{}}
	s.srv.ConnState = s.track
	go func() {
		if cfg.TLSCert != "" && cfg.TLSKey != "" {
			s.done <- s.srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			s.done <- s.srv.Serve(ln)
		}
	}()
	return s, nil
}

// Wait blocks until the server stops and returns why.
func (s *Server) Wait() error {
	err := <-s.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server: it stops listening, lets the requests under
// way finish (for up to 5 s), and closes at once the connections that
// never began one (a client's transport may dial one more than it uses;
// net/http's Shutdown would wait 5 s for each).
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.srv.Shutdown(ctx) }()
	s.mu.Lock()
	for c := range s.fresh {
		c.Close()
	}
	s.mu.Unlock()
	return <-stopped
}
