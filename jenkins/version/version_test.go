package version

import "testing"

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"3400.v1", "3355.vabc", 1},
		{"3355.vabc", "3355.vdef", 0}, // the hash does not order
		{"4.13.3", "4.13", 1},
		{"4.13", "4.13.3", -1},
		{"3107.v665000b_51092", "4.13.3", 1}, // JEP-229 after dotted
		{"1.27.1", "1.27.2", -1},
		{"1.27.10", "1.27.9", 1}, // numbers, not text
		{"4423.vb_59f230b_ce53", "1.27.2", 1},
		{"2.555.1", "2.555.1", 0},
		{"", "1", -1},
		{"x", "", 0},
		{"1.x.3", "1.2", -1}, // stops at the first field that is not a number
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Compare(tc.b, tc.a); got != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}
