package cpython

import "testing"

func TestNewer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"3.11.10", "3.11.9", true},
		{"3.11.9", "3.11.10", false},
		{"3.11.9", "3.11.9", false},
		{"3.12.0", "3.11.16", true},
	} {
		if got := Newer(tc.a, tc.b); got != tc.want {
			t.Errorf("Newer(%s, %s) = %t", tc.a, tc.b, got)
		}
	}
}
