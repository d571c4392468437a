// Package registrytest starts real registries (distribution/v3, in-process)
// for tests, optionally with htpasswd auth over TLS signed by a test CA, and
// a fault-injecting proxy in front of them.
package registrytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registry"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
)

// Options select what the registry requires.
type Options struct {
	// Auth requires basic auth (htpasswd) as User/Password.
	Auth bool
	// TLS serves HTTPS with a certificate from a fresh test CA.
	TLS bool
}

// Registry is a running test registry.
type Registry struct {
	// Host is 127.0.0.1:port, the registry part of references.
	Host string
	// Scheme is http or https.
	Scheme string
	// CAFile is the test CA (PEM), when TLS.
	CAFile string
	// AuthFile is a docker config.json with the credentials, when Auth.
	AuthFile string
	User     string
	Password string
	Root     string
}

// New starts a registry that stops when the test ends.
func New(t testing.TB, opts Options) *Registry {
	t.Helper()
	dir := t.TempDir()
	r := &Registry{Root: filepath.Join(dir, "data"), Scheme: "http"}
	cfg := registry.Config{Addr: "127.0.0.1:0", Root: r.Root}
	if opts.Auth {
		r.User, r.Password = "agentforge", "correct horse battery staple"
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Htpasswd = filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(cfg.Htpasswd, []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if opts.TLS {
		r.Scheme = "https"
		r.CAFile, cfg.TLSCert, cfg.TLSKey = writeTLS(t, dir)
	}
	// distribution logs every 404 through logrus' standard logger; the
	// registry's own chatter is not what these tests look at.
	logrus.SetLevel(logrus.FatalLevel)
	srv, err := registry.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r.Host = srv.Addr
	if opts.Auth {
		r.AuthFile = WriteAuthFile(t, map[string][2]string{r.Host: {r.User, r.Password}})
	}
	return r
}

// WriteAuthFile writes a docker config.json with the given host ->
// {user, password} entries and returns its path.
func WriteAuthFile(t testing.TB, creds map[string][2]string) string {
	t.Helper()
	auths := map[string]map[string]string{}
	for host, c := range creds {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(c[0] + ":" + c[1]))}
	}
	data, _ := json.Marshal(map[string]any{"auths": auths})
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeTLS makes a CA and a server certificate for 127.0.0.1 and localhost.
func writeTLS(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	valid := func(c *x509.Certificate) *x509.Certificate {
		c.NotBefore, c.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		return c
	}
	caTmpl := valid(&x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentforge test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	})
	caKey, caDER := issue(t, caTmpl, nil, nil)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, der := issue(t, valid(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}), ca, caKey)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(p, typ string, b []byte) {
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caFile, "CERTIFICATE", caDER)
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", keyDER)
	return caFile, certFile, keyFile
}

// issue makes a P-256 key and a certificate for it from tmpl, signed by
// parent's key (self-signed when parent is nil).
func issue(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

// Open opens r for a test (its files under a temporary folder removed
// when the test ends): the *remote.Hosts every publisher, builder and
// sign call takes.
func Open(t testing.TB, r remote.Registries) *remote.Hosts {
	t.Helper()
	h, err := r.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return h
}
