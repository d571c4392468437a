package oci

import "testing"

func TestPlatform_Normalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"linux/amd64", "linux/amd64"},
		{"linux/arm64/v8", "linux/arm64"},
		{"Linux/ARM64", "linux/arm64"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"linux/x86_64", "linux/amd64"},
		{"linux/x86-64", "linux/amd64"},
		{"linux/aarch64", "linux/arm64"},
		{"linux/aarch64/8", "linux/arm64"},
		{"linux/i386", "linux/386"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"linux/arm/7", "linux/arm/v7"},
		{"not-a-platform", "not-a-platform"},
	} {
		if got := NormalizePlatform(tc.in); got != tc.want {
			t.Errorf("NormalizePlatform(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"linux", "linux/", "/amd64", "linux/arm64/", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
}
