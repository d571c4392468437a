package builder

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// currentUlimits pins nofile and nproc at the current hard limits. As root,
// buildah otherwise raises them to 1048576, which fails without
// CAP_SYS_RESOURCE.
func currentUlimits() []string {
	var out []string
	for _, l := range []struct {
		name string
		res  int
	}{{"nofile", unix.RLIMIT_NOFILE}, {"nproc", unix.RLIMIT_NPROC}} {
		var rl unix.Rlimit
		if unix.Getrlimit(l.res, &rl) == nil && rl.Max != unix.RLIM_INFINITY {
			out = append(out, fmt.Sprintf("%s=%d:%d", l.name, rl.Max, rl.Max))
		}
	}
	return out
}
