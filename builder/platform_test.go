package builder

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"linux/arm64", "linux/arm64", true},
		{"linux/arm/v7", "linux/arm/v7", true},
		{"linux", "", false},
		{"linux/", "", false},
		{"/arm64", "", false},
		{"linux/arm/", "", false},
		{"linux/arm/v7/x", "", false},
	} {
		p, err := oci.ParsePlatform(tc.in)
		if (err == nil) != tc.ok || tc.ok && p.String() != tc.want {
			t.Errorf("oci.ParsePlatform(%q) = %v, %v", tc.in, p, err)
		}
	}
}

// CheckEmulation reads the kernel's binfmt_misc handlers; these cases use
// a folder laid out the same way.
func TestCheckEmulation(t *testing.T) {
	foreign := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	if foreign == "" {
		t.Fatalf("no foreign platform known for %s", runtime.GOARCH)
	}
	q := qemuArch[foreign]
	handler := func(lines ...string) map[string]string {
		return map[string]string{"status": "enabled\n", "qemu-" + q: strings.Join(lines, "\n") + "\n"}
	}
	for _, tc := range []struct {
		name     string
		files    map[string]string // nil: no binfmt_misc at all
		platform string
		want     string // "" means no error
	}{
		{"native", nil, "linux/" + runtime.GOARCH, ""},
		{"registered with F", handler("enabled", "interpreter /usr/libexec/qemu-binfmt/x-binfmt-P", "flags: PF", "offset 0"), "linux/" + foreign, ""},
		{"not mounted", nil, "linux/" + foreign, "binfmt_misc is not mounted"},
		{"no handler", map[string]string{"status": "enabled\n"}, "linux/" + foreign, "no binfmt_misc handler qemu-" + q},
		{"disabled", handler("disabled", "flags: PF"), "linux/" + foreign, "is disabled"},
		{"no fix-binary flag", handler("enabled", "flags: P"), "linux/" + foreign, "lacks the F (fix-binary) flag"},
		{"unknown architecture", map[string]string{"status": "enabled\n"}, "linux/sparc64", "no known qemu-user emulator"},
		{"named as Fedora does", map[string]string{"status": "enabled\n", "qemu-" + q + "-static": "enabled\nflags: F\n"}, "linux/" + foreign, ""},
		{"binfmt_misc disabled", map[string]string{"status": "disabled\n", "qemu-" + q: "enabled\nflags: PF\n"}, "linux/" + foreign, "binfmt_misc is disabled"},
		{"another kernel", nil, "windows/amd64", "this machine's kernel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "binfmt_misc")
			if tc.files != nil {
				os.MkdirAll(dir, 0o755)
				for name, data := range tc.files {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			old := binfmtDir
			binfmtDir = dir
			defer func() { binfmtDir = old }()
			p, err := oci.ParsePlatform(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckEmulation(p)
			var ee *EmulationError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want no error, got %v", err)
			case tc.want != "" && (!errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an EmulationError containing %q, got %v", tc.want, err)
			}
		})
	}
}
