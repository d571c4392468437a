package remote

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/agentforge/agentforge/images/errs"
)

// authFile is what c/image reads of an auth file (pkg/docker/config's
// dockerConfigFile and dockerAuthConfig), decoded the same way: keys
// match case-insensitively, a value of another type fails the whole file.
type authFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// checkAuthFile reads an auth file (docker config.json or containers
// auth.json) as c/image will, so that what it cannot use is said once, up
// front, as bad input: c/image would fail every request with the same
// error, which looks like the registry's fault and retryable. A missing
// or malformed file is errs.ErrInput; no credential is quoted.
func checkAuthFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return errs.Inputf("auth file: %w", err)
	}
	var f authFile
	if err := json.Unmarshal(data, &f); err != nil {
		// A type error names where and the JSON kind found, never a value.
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return errs.Inputf("auth file %s: a JSON %s, not an object (docker config.json or containers auth.json)", path, te.Value)
		case te != nil:
			return errs.Inputf(`auth file %s: %s is a JSON %s: want "auths", an object of registries each with "auth" (and "identitytoken") strings, and "credHelpers", an object of registries each with a helper's name`, path, te.Field, te.Value)
		}
		return errs.Inputf("auth file %s: not a JSON object (docker config.json or containers auth.json): %w", path, err)
	}
	if err := checkAuths(f); err != nil {
		return errs.Inputf("auth file %s: %w", path, err)
	}
	return nil
}

// checkAuths checks an auth file's "auths" as c/image decodes them
// (pkg/docker/config's decodeDockerAuth): an "auth" that is not standard
// base64 fails every request to its registry, which looks like a
// registry's fault. Neither the value nor what it decodes to is quoted.
func checkAuths(f authFile) error {
	for host, a := range f.Auths {
		if _, err := base64.StdEncoding.DecodeString(a.Auth); err != nil {
			return fmt.Errorf(`the "auth" of %s is not base64 (of user:password)`, host)
		}
	}
	return nil
}
