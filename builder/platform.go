package builder

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/agentforge/agentforge/builder/oci"
)

// native reports whether p runs on this machine without emulation.
func native(p oci.Platform) bool {
	h := oci.HostPlatform()
	return p.OS == h.OS && (p.Arch == h.Arch || h.Arch == "amd64" && p.Arch == "386" || h.Arch == "arm64" && p.Arch == "arm")
}

// qemuArch names Linux architectures the way qemu-user's binfmt handlers
// (qemu-<arch>) do.
var qemuArch = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el",
}

// binfmtDir is where the kernel lists its binfmt_misc handlers.
var binfmtDir = "/proc/sys/fs/binfmt_misc"

// EmulationError says a foreign platform cannot be built here: no enabled
// binfmt_misc handler runs its programs.
type EmulationError struct {
	Platform oci.Platform
	Reason   string
}

func (e *EmulationError) Error() string {
	return fmt.Sprintf("platform %s: %s: install the Debian packages qemu-user-static and binfmt-support (make deps does, and mounts binfmt_misc), or build on a %s agent and join the images with agentforge index",
		e.Platform, e.Reason, e.Platform)
}

// CheckEmulation returns nil when programs for p run here: natively, or
// through an enabled qemu-user binfmt_misc handler registered with the F
// (fix-binary) flag, which chroot builds need because the interpreter is not
// inside the image's root.
func CheckEmulation(p oci.Platform) error {
	if p.OS != runtime.GOOS {
		return &EmulationError{Platform: p, Reason: "builds run on this machine's kernel (" + runtime.GOOS + ")"}
	}
	if native(p) {
		return nil
	}
	q, ok := qemuArch[p.Arch]
	if !ok {
		return &EmulationError{Platform: p, Reason: "no known qemu-user emulator for " + p.Arch}
	}
	status, err := os.ReadFile(filepath.Join(binfmtDir, "status"))
	switch {
	case err != nil:
		return &EmulationError{Platform: p, Reason: "binfmt_misc is not mounted at " + binfmtDir}
	case strings.TrimSpace(string(status)) != "enabled":
		return &EmulationError{Platform: p, Reason: "binfmt_misc is disabled (" + filepath.Join(binfmtDir, "status") + ")"}
	}
	// Debian names the handler qemu-ARCH; Fedora and others qemu-ARCH-static.
	var f *os.File
	for _, name := range []string{"qemu-" + q, "qemu-" + q + "-static"} {
		if f, err = os.Open(filepath.Join(binfmtDir, name)); err == nil {
			break
		}
	}
	if f == nil {
		return &EmulationError{Platform: p, Reason: "no binfmt_misc handler qemu-" + q + " is registered"}
	}
	defer f.Close()
	enabled, fixed := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "enabled":
			enabled = true
		case strings.HasPrefix(line, "flags:"):
			fixed = strings.Contains(strings.TrimPrefix(line, "flags:"), "F")
		}
	}
	switch {
	case !enabled:
		return &EmulationError{Platform: p, Reason: "the binfmt_misc handler qemu-" + q + " is disabled (update-binfmts --enable qemu-" + q + ")"}
	case !fixed:
		return &EmulationError{Platform: p, Reason: "the binfmt_misc handler qemu-" + q + " lacks the F (fix-binary) flag, so it cannot run inside a chroot"}
	}
	return nil
}
