// Package version compares Jenkins version numbers: the core's (2.555.1),
// a plugin's and remoting's. Since JEP-229 most are BUILD.vHASH
// (4423.vb_59f230b_ce53, 3355.v388858a_47b_33); older ones are dotted
// numbers (1.27.1, 4.13.3). Both compare by their leading dotted numbers,
// as hudson.util.VersionNumber orders them.
package version

import (
	"strconv"
	"strings"
)

// Compare returns -1 when a is older than b, +1 when it is newer and 0 when
// their leading dotted numbers are the same. A version whose numbers are a
// prefix of the other's is the older (4.13 < 4.13.3).
func Compare(a, b string) int {
	na, nb := numbers(a), numbers(b)
	for i := 0; i < len(na) && i < len(nb); i++ {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(na) < len(nb):
		return -1
	case len(na) > len(nb):
		return 1
	}
	return 0
}

// numbers are v's dot-separated fields up to the first that is not a
// number.
func numbers(v string) []int {
	var out []int
	for _, f := range strings.Split(v, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}
