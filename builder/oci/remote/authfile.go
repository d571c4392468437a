package remote

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/agentforge/agentforge/images/errs"
)

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
	var v map[string]json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil {
		return errs.Inputf("auth file %s: not a JSON object (docker config.json or containers auth.json): %w", path, err)
	}
	if err := checkAuths(v["auths"]); err != nil {
		return errs.Inputf("auth file %s: %w", path, err)
	}
	return nil
}

// checkAuths checks an auth file's "auths" as c/image decodes them
// (pkg/docker/config's decodeDockerAuth): an "auth" that is not standard
// base64 fails every request to its registry, which looks like a
// registry's fault. Neither the value nor what it decodes to is quoted.
func checkAuths(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	var auths map[string]struct {
		Auth string `json:"auth"`
	}
	if err := json.Unmarshal(raw, &auths); err != nil {
		return errors.New(`"auths" is not an object of registries, each with an "auth" string`)
	}
	for host, a := range auths {
		if _, err := base64.StdEncoding.DecodeString(a.Auth); err != nil {
			return fmt.Errorf(`the "auth" of %s is not base64 (of user:password)`, host)
		}
	}
	return nil
}
