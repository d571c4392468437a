package sign

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/agentforge/agentforge/images/errs"
)

// WriteKeyPair makes a new key pair (GenerateKeyPair) and writes it as
// cosign generate-key-pair does: prefix.key, the encrypted private key,
// mode 0600, and prefix.pub. Both paths are checked before anything is
// written: an existing file or symbolic link (a dangling one too) at
// either is bad input unless replace, and then neither is written. Each
// file is written under a temporary name, never readable by others, and
// moved into place without following a link; if the second cannot be
// placed, the first is removed again.
func WriteKeyPair(prefix string, passphrase []byte, replace bool) (privPath, pubPath string, err error) {
	privPath, pubPath = prefix+".key", prefix+".pub"
	if !replace {
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return "", "", errs.Inputf("%s exists: not overwritten", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", "", errs.Inputf("%s: %w", p, err)
			}
		}
	}
	priv, pub, err := GenerateKeyPair(passphrase)
	if err != nil {
		return "", "", err
	}
	if dir := filepath.Dir(prefix); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", fmt.Errorf("key pair: %w", err)
		}
	}
	if err := placeFile(privPath, priv, 0o600, replace); err != nil {
		return "", "", err
	}
	if err := placeFile(pubPath, pub, 0o644, replace); err != nil {
		os.Remove(privPath)
		return "", "", err
	}
	return privPath, pubPath, nil
}

// placeFile writes data to a new file in path's folder, created with mode
// perm, and renames it over path (replace) or links it there only if
// nothing is at path: a file or symbolic link at path is never written
// through.
func placeFile(path string, data []byte, perm os.FileMode, replace bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if replace {
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	// A link fails if path exists: no check-then-write window.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errs.Inputf("%s exists: not overwritten", path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
