package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/containers/buildah/define"
	"github.com/spf13/cobra"
)

// version is set at link time (-X main.version=…); "dev" otherwise.
var version = "dev"

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of agentforge and of the libraries it builds with",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := map[string]string{"version": version, "buildah": define.Version, "go": runtime.Version()}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, dep := range bi.Deps {
					switch dep.Path {
					case "github.com/bndr/gojenkins":
						v["gojenkins"] = dep.Version
					case "go.podman.io/image/v5":
						v["containersImage"] = dep.Version
					}
				}
			}
			a.emit(v, func(w io.Writer) {
				fmt.Fprintf(w, "agentforge %s (buildah %s, %s)\n", v["version"], v["buildah"], v["go"])
			})
			return nil
		},
	}
}
