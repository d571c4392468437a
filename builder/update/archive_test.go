package update

import (
	"context"
	"strings"
	"testing"
)

// A Packages index larger than maxIndex uncompressed is an error, not read
// in part: the packages past the bound would be missed, and their pending
// updates hidden. One at the bound is read whole.
func TestArchive_PackagesTooLarge(t *testing.T) {
	index := stanza("libc6", "2.41-12", "amd64") + stanza("openssl", "3.5.1-1", "amd64")
	a := newFakeArchive(t)
	a.suite("/debian", "trixie", "Date: Sat, 09 Aug 2025\n", index, "xz")
	defer func(n int64) { maxIndex = n }(maxIndex)
	for _, tc := range []struct {
		bound int64
		want  []string
		err   string
	}{
		{bound: int64(len(index)), want: []string{"libc6", "openssl"}},
		{bound: int64(len(index)) - 1, err: "more than"},
	} {
		maxIndex = tc.bound
		var got []string
		err := (&archive{}).packages(context.Background(), a.srv.URL+"/debian/dists/trixie/main/binary-amd64/Packages", func(e indexEntry) { got = append(got, e.Name) })
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("bound %d: %v, want an error saying %q", tc.bound, err, tc.err)
		case tc.err == "" && (err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",")):
			t.Errorf("bound %d: %q, %v; want %q", tc.bound, got, err, tc.want)
		}
	}
}
