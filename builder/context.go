package builder

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// copyContext copies the definition folder fsys into dir, the build
// context. Only regular files and folders are copied (a symbolic link is an
// error: images.Load refuses them, this guards library callers), and runs of
// zeros are skipped rather than written, so a sparse file stays sparse.
func copyContext(dir string, fsys fs.FS) error {
	buf := make([]byte, 1<<20)
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file or folder (%s)", p, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		in, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		// As os.CopyFS: 0666 (less the umask) plus the source's execute bits.
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666|info.Mode().Perm()&0o111)
		if err != nil {
			return err
		}
		if err := copySparse(out, in, buf); err != nil {
			out.Close()
			return fmt.Errorf("%s: %w", p, err)
		}
		return out.Close()
	})
}

// copySparse copies in to out, seeking over blocks of zeros instead of
// writing them, and sets out's size at the end.
func copySparse(out *os.File, in io.Reader, buf []byte) error {
	var size int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			chunk := buf[:n]
			if isZero(chunk) {
				if _, err := out.Seek(int64(n), io.SeekCurrent); err != nil {
					return err
				}
			} else if _, err := out.Write(chunk); err != nil {
				return err
			}
			size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out.Truncate(size)
		}
		if err != nil {
			return err
		}
	}
}

var zeros [1 << 20]byte // in the zeroed data segment: nothing to allocate at start

func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }
