package remote

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images/errs"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/types"
)

// What c/image's pkg/docker/config cannot read, the check refuses up
// front; what it reads, the check lets through. Each file is also handed
// to c/image, so that the two cannot drift apart unnoticed.
func TestCheckAuthFile_AsCImageReadsIt(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		bad        bool
	}{
		{"docker login", `{"auths":{"r.example":{"auth":"dTpw"}}}`, false},
		{"credsStore, empty entry", `{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"desktop"}`, false},
		{"credHelpers", `{"auths":{},"credHelpers":{"r.example":"none-such"}}`, false},
		{"identitytoken", `{"auths":{"r.example":{"auth":"MDAwOg==","identitytoken":"eyJhbGciOi"}}}`, false},
		{"email only", `{"auths":{"r.example":{"email":"a@b.example"}}}`, false},
		{"https key", `{"auths":{"https://r.example/v1/":{"auth":"dTpw"}}}`, false},
		{"null entry", `{"auths":{"r.example":null}}`, false},
		{"other docker keys", `{"auths":{},"HttpHeaders":{"User-Agent":"x"},"proxies":{"default":{}}}`, false},
		{"auth not base64", `{"auths":{"r.example":{"auth":"u:S3cr3t"}}}`, true},
		// encoding/json matches keys case-insensitively, as c/image reads them.
		{"Auths, auth not base64", `{"Auths":{"r.example":{"auth":"u:S3cr3t"}}}`, true},
		{"identitytoken not a string", `{"auths":{"r.example":{"auth":"dTpw","identitytoken":5}}}`, true},
		{"credHelpers not an object", `{"auths":{},"credHelpers":["r.example"]}`, true},
		{"auths not an object", `{"auths":["r.example"]}`, true},
		{"not an object", `["r.example"]`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "auth.json")
			if err := os.WriteFile(p, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			err := checkAuthFile(p)
			if tc.bad != (err != nil) || (err != nil && !errors.Is(err, errs.ErrInput)) {
				t.Errorf("check: %v, want bad input %t", err, tc.bad)
			}
			if err != nil && strings.Contains(err.Error(), "S3cr3t") {
				t.Errorf("the error quotes the file: %v", err)
			}
			conf := filepath.Join(t.TempDir(), "registries.conf")
			os.WriteFile(conf, []byte("unqualified-search-registries = []\n"), 0o600)
			_, cerr := config.GetCredentials(&types.SystemContext{AuthFilePath: p, SystemRegistriesConfPath: conf, SystemRegistriesConfDirPath: t.TempDir()}, "r.example")
			if cImageBad := cerr != nil && !strings.Contains(cerr.Error(), "none-such"); cImageBad != tc.bad {
				t.Errorf("c/image: %v; the check's verdict (bad %t) is not c/image's", cerr, tc.bad)
			}
		})
	}
}
