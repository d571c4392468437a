package main

import (
	"github.com/agentforge/agentforge/images/errs"

	"github.com/agentforge/agentforge/publisher/registry"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

// registryResult is registry serve's JSON: where it listens.
type registryResult struct {
	URL  string `json:"url"`
	Addr string `json:"addr"`
	Root string `json:"root"`
}

func (a *app) registryCommand() *cobra.Command {
	var cfg registry.Config
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run an OCI registry (distribution v3, in-process) until interrupted",
		Example: `  agentforge registry serve --addr 127.0.0.1:5000 --root /var/lib/agentforge/registry
  agentforge registry serve --addr 127.0.0.1:0 --root /tmp/reg -o json   # prints {"url", "addr", "root"} once listening
  agentforge registry serve --addr :5443 --root /srv/reg --htpasswd /etc/reg/htpasswd --tls-cert cert.pem --tls-key key.pem`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return errs.Inputf("--tls-cert and --tls-key go together")
			}
			// A registry's operator wants its clients' errors too.
			if std := logrus.StandardLogger(); std.Formatter != nil {
				if f, ok := std.Formatter.(clientErrorFilter); ok {
					std.Formatter = f.Formatter
				}
			}
			srv, err := registry.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			scheme := "http"
			if cfg.TLSCert != "" {
				scheme = "https"
			}
			a.log.WithField("root", cfg.Root).Infof("registry listening on %s://%s", scheme, srv.Addr)
			if a.output == "json" {
				// A server's result is where it listens, printed at once
				// (a script waits for it; --addr HOST:0 picks the port),
				// not when it stops.
				a.writeJSON(registryResult{URL: scheme + "://" + srv.Addr, Addr: srv.Addr, Root: cfg.Root})
			}
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			return srv.Wait()
		},
	}
	fl := serve.Flags()
	fl.StringVar(&cfg.Addr, "addr", "127.0.0.1:5000", "address to listen on")
	fl.StringVar(&cfg.Root, "root", "", "directory for the registry's data (required)")
	fl.StringVar(&cfg.Htpasswd, "htpasswd", "", "bcrypt htpasswd file: require basic auth")
	fl.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&cfg.TLSKey, "tls-key", "", "TLS key (PEM)")
	serve.MarkFlagRequired("root")
	cmd := &cobra.Command{Use: "registry", Short: "Run an embedded OCI registry"}
	cmd.AddCommand(serve)
	return cmd
}
