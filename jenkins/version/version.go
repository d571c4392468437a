// Package version compares Jenkins version numbers: the core's (2.555.1),
// a plugin's and remoting's. Since JEP-229 most are BUILD.vHASH
// (4423.vb_59f230b_ce53, 3355.v388858a_47b_33); older ones are dotted
// numbers (1.27.1, 4.13.3).
//
// Versions are compared by their leading dot-separated integer fields
// only, up to the first field that is not a plain integer; what follows
// (a JEP-229 hash, or a qualifier with the field it is attached to:
// "3-rc1", "0-SNAPSHOT") is ignored. This agrees with
// hudson.util.VersionNumber for plain dotted numbers and for JEP-229
// versions with different build numbers, which is what agentforge
// compares; not for qualified versions (1.27.3-rc1 sorts before 1.27.2
// here), trailing zeros (2.555 < 2.555.0 here, equal in Jenkins) or
// versions that differ only in their hash (equal here).
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
