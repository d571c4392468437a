package oci

import (
	"runtime"
	"strings"

	"github.com/agentforge/agentforge/images/errs"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Platform is an os/arch[/variant] triple, e.g. linux/arm64: what an image
// runs on.
type Platform struct {
	OS, Arch, Variant string
}

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || len(parts) == 3 && parts[2] == "" {
		return Platform{}, errs.Inputf("platform %q: want os/arch[/variant], e.g. linux/arm64", s)
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// PlatformOf is the platform an index entry or image config declares
// (the zero Platform for nil).
func PlatformOf(p *imgspecv1.Platform) Platform {
	if p == nil {
		return Platform{}
	}
	return Platform{OS: p.OS, Arch: p.Architecture, Variant: p.Variant}
}

func (p Platform) String() string {
	if p.OS == "" && p.Arch == "" {
		return ""
	}
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// TagSuffix is the platform as a tag suffix: linux-arm64, linux-arm-v7.
func (p Platform) TagSuffix() string { return strings.ReplaceAll(p.String(), "/", "-") }

// Normalize writes p the one way it is meant where registries and tools
// spell it differently, as containerd's platforms.Normalize does
// (containerd/platforms, database.go normalizeArch): lower case; x86_64
// and x86-64 as amd64, aarch64 as arm64, i386 as 386, armhf as arm/v7,
// armel as arm/v6; a bare variant number as vN; arm64/v8 as arm64,
// amd64/v1 as amd64, arm as arm/v7.
func (p Platform) Normalize() Platform {
	n := Platform{OS: strings.ToLower(p.OS), Arch: strings.ToLower(p.Arch), Variant: strings.ToLower(p.Variant)}
	switch n.Arch {
	case "x86_64", "x86-64":
		n.Arch = "amd64"
	case "aarch64":
		n.Arch = "arm64"
	case "i386":
		n.Arch = "386"
	case "armhf":
		n.Arch, n.Variant = "arm", "v7"
	case "armel":
		n.Arch, n.Variant = "arm", "v6"
	}
	if n.Variant != "" && strings.Trim(n.Variant, "0123456789") == "" && (n.Arch == "arm" || n.Arch == "arm64") {
		n.Variant = "v" + n.Variant
	}
	switch {
	case n.Arch == "arm64" && n.Variant == "v8", n.Arch == "amd64" && n.Variant == "v1":
		n.Variant = ""
	case n.Arch == "arm" && n.Variant == "":
		n.Variant = "v7"
	}
	return n
}

// HostPlatform is this machine's platform.
func HostPlatform() Platform { return Platform{OS: runtime.GOOS, Arch: runtime.GOARCH} }

// NormalizePlatform is s (os/arch[/variant]) normalized (see Normalize),
// for keys and comparisons; s lower-cased when it does not parse.
func NormalizePlatform(s string) string {
	p, err := ParsePlatform(s)
	if err != nil {
		return strings.ToLower(s)
	}
	return p.Normalize().String()
}
