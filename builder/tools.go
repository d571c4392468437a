package builder

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
)

// debianPackages maps the helper programs that agentforge, buildah or the
// containers libraries may run to the Debian package that installs them.
var debianPackages = map[string]string{
	"aardvark-dns":        "aardvark-dns",
	"catatonit":           "catatonit",
	"conmon":              "conmon",
	"crun":                "crun",
	"debootstrap":         "debootstrap",
	"fuse-overlayfs":      "fuse-overlayfs",
	"git":                 "git",
	"netavark":            "netavark",
	"newgidmap":           "uidmap",
	"newuidmap":           "uidmap",
	"pasta":               "passt",
	"podman":              "podman",
	"qemu-aarch64-static": "qemu-user-static",
	"qemu-x86_64-static":  "qemu-user-static",
	"runc":                "runc",
	"skopeo":              "skopeo",
	"slirp4netns":         "slirp4netns",
	"tar":                 "tar",
}

// MissingToolError reports a helper program that is not installed.
type MissingToolError struct {
	// Tool is the program's name, e.g. "debootstrap".
	Tool string
	// Package is the Debian package that provides it, when known.
	Package string
	// Err is the lower-level error that revealed the absence.
	Err error
}

func (e *MissingToolError) Error() string {
	if e.Package == "" {
		return fmt.Sprintf("helper program %q is not installed (not found on PATH)", e.Tool)
	}
	return fmt.Sprintf("helper program %q is not installed: install the Debian package %q (apt-get install %s)", e.Tool, e.Package, e.Package)
}

func (e *MissingToolError) Unwrap() error { return e.Err }

// LookTool finds a helper program on PATH, or returns a *MissingToolError
// naming the Debian package to install.
func LookTool(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", &MissingToolError{Tool: name, Package: debianPackages[name], Err: err}
	}
	return path, nil
}

// helperNotFound matches the containers libraries' message for a helper
// binary they could not find (go.podman.io/common/pkg/config FindHelperBinary):
// `could not find "netavark" in one of [...]`.
var helperNotFound = regexp.MustCompile(`could not find "([^"]+)" in one of`)

// explainMissingTool turns the containers libraries' "could not find
// helper" error, whose advice is about containers.conf, into a
// *MissingToolError naming the package to install. Other errors are returned
// as they are. The library gives no typed error for this, so its message is
// the only signal.
func explainMissingTool(err error) error {
	var mt *MissingToolError
	if err == nil || errors.As(err, &mt) {
		return err
	}
	m := helperNotFound.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	return &MissingToolError{Tool: m[1], Package: debianPackages[m[1]], Err: err}
}
