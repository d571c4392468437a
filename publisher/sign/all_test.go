package sign

import "testing"

// The summary line of a Signed says plainly when a ref is not signed.
func TestSigned_String(t *testing.T) {
	const ref = "reg.example/app@sha256:0123"
	for _, tc := range []struct {
		in   Signed
		want string
	}{
		{Signed{Ref: ref, Signature: &Result{}}, "signed " + ref},
		{Signed{Ref: ref, Signature: &Result{}, SBOM: &Result{}}, "signed, SBOM attested " + ref},
		{Signed{Ref: ref, SBOM: &Result{}, Error: "attest: HTTP 500"}, "NOT signed " + ref + ": attest: HTTP 500"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
