package update

import "testing"

// The cases of dpkg's own test suite (lib/dpkg/t/t-version.c) that matter
// here: epochs, tildes, letters against digits, revisions.
func TestCompareDebVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1.10", "1.9", 1},
		{"1:1.0", "2.0", 1},
		{"0:1.0", "1.0", 0},
		{"1.0~rc1", "1.0", -1},
		{"1.0~~", "1.0~", -1},
		{"1.0", "1.0-1", -1},
		{"1.0-1", "1.0-2", -1},
		{"1.0a", "1.0", 1},
		{"1.0+b1", "1.0", 1},
		{"2.36.1-8+deb11u1", "2.36.1-8+deb11u2", -1},
		{"3.0.11-1~deb12u2", "3.0.11-1", -1},
		{"252.22-1~deb12u1", "252.19-1~deb12u1", 1},
		{"1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u5", -1},
		{"00010", "10", 0},
	} {
		got := CompareDebVersions(tc.a, tc.b)
		if sign(got) != tc.want {
			t.Errorf("CompareDebVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if back := CompareDebVersions(tc.b, tc.a); sign(back) != -tc.want {
			t.Errorf("CompareDebVersions(%q, %q) = %d, want %d", tc.b, tc.a, back, -tc.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
