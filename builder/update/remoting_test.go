package update

import "testing"

// The remoting release adopted is the newest release the Maven metadata
// names: <release> is only what was deployed last, <latest> may be a
// snapshot, and a version that is not a release (a path, a snapshot, an
// rc) is never adopted, since it goes into the jar's URL and the
// definition.
func TestNewestRemoting(t *testing.T) {
	meta := func(release, latest string, versions ...string) mavenMetadata {
		var m mavenMetadata
		m.Versioning.Release, m.Versioning.Latest, m.Versioning.Versions = release, latest, versions
		return m
	}
	for _, tc := range []struct {
		name string
		m    mavenMetadata
		want string
	}{
		{"release is the newest", meta("3400.v1234567890ab", "3400.v1234567890ab", "3355.v388858a_47b_33", "3400.v1234567890ab"), "3400.v1234567890ab"},
		{"an older release deployed last", meta("3355.v388858a_47b_33", "3355.v388858a_47b_33", "3355.v388858a_47b_33", "3400.v1234567890ab"), "3400.v1234567890ab"},
		{"latest is a snapshot", meta("", "3999.vdeadbeef-SNAPSHOT", "3355.v388858a_47b_33"), "3355.v388858a_47b_33"},
		{"a path for a version", meta(`9999.x" y/../../z`, "", "3355.v388858a_47b_33"), "3355.v388858a_47b_33"},
		{"an rc and a beta", meta("", "", "3355.v388858a_47b_33", "3500.v1-rc1", "4000-beta-1"), "3355.v388858a_47b_33"},
		{"old dotted versions", meta("4.13.3", "4.13.3", "4.13", "4.13.3", "4.9"), "4.13.3"},
		{"JEP-229 after dotted", meta("", "", "4.13.3", "3107.v665000b_51092"), "3107.v665000b_51092"},
		{"nothing", meta("", "", "x.SNAPSHOT"), ""},
	} {
		if got := newestRemoting(tc.m); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
