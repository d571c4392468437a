package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/containers/buildah/define"
	"github.com/spf13/cobra"
)

// version is set at link time from `git describe` (make build, make dist:
// -X main.version=…). A build without it reports the module version that
// `go install …@vX` records, or "dev".
var version = ""

// currentVersion is agentforge's version: the link-time one, else the
// module version of a `go install …@vX.Y.Z`, else "dev" (a build outside
// git, or a plain `go build`).
func currentVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionInfo is what `version` prints: agentforge's version and those of
// the libraries it builds with.
func versionInfo() map[string]string {
	v := map[string]string{"version": currentVersion(), "buildah": define.Version, "go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			switch dep.Path {
			case "github.com/bndr/gojenkins":
				v["gojenkins"] = dep.Version
			case "go.podman.io/image/v5":
				v["containersImage"] = dep.Version
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v["revision"] = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					v["modified"] = "true"
				}
			}
		}
	}
	return v
}

// versionLine is the one line `agentforge --version` and `agentforge
// version` print.
func versionLine(v map[string]string) string {
	return fmt.Sprintf("agentforge %s (buildah %s, %s)\n", v["version"], v["buildah"], v["go"])
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of agentforge and of the libraries it builds with",
		Long: `Version prints agentforge's version and those of the libraries it builds
with (-o json: {"version", "buildah", "go", "gojenkins", "containersImage",
"revision"}). The version comes from the git tag the binary was built from
(git describe: v1.2.0, or v1.2.0-3-gabc1234 three commits after it, -dirty
with uncommitted changes); a build outside git says "dev". --version on the
command itself prints the same line.`,
		Example: `  agentforge version
  agentforge version -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo()
			a.emit(v, func(w io.Writer) { io.WriteString(w, versionLine(v)) })
			return nil
		},
	}
}
