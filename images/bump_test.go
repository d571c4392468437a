package images

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// editFolder writes a definition folder with variables a and b.
func editFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "name: x\nversion: \"1\"\nbase:\n  # the base\n  image: docker.io/library/ubuntu:24.04\nvariables:\n  a: \"0\"\n  b: \"0\"\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(yaml), 0o640); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Every edit is made, or none: a base digest the definition cannot take
// leaves the variables edited with it unwritten.
func TestEditDefinition(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   Edit
		err    string
		a      string
		digest string
	}{
		{name: "variables and digest", edit: Edit{Variables: map[string]string{"a": "1"}, BaseDigest: "sha256:" + strings.Repeat("2", 64)},
			a: "1", digest: "sha256:" + strings.Repeat("2", 64)},
		{name: "a digest that is not sha256", edit: Edit{Variables: map[string]string{"a": "1"}, BaseDigest: "sha512:" + strings.Repeat("2", 128)},
			err: "base.digest", a: "0"},
		{name: "a variable that does not exist", edit: Edit{Variables: map[string]string{"a": "1", "c": "1"}, BaseDigest: "sha256:" + strings.Repeat("2", 64)},
			err: `variable "c" not found`, a: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := editFolder(t)
			before, _ := os.ReadFile(filepath.Join(dir, FileName))
			err := EditDefinition(dir, tc.edit)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, FileName))
			if tc.err != "" && string(after) != string(before) {
				t.Errorf("a failed edit changed image.yaml:\n%s", after)
			}
			def, err := Find(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if def.Vars["a"] != tc.a || def.Base.Digest != tc.digest {
				t.Errorf("a=%s digest=%s, want a=%s digest=%s", def.Vars["a"], def.Base.Digest, tc.a, tc.digest)
			}
			if !strings.Contains(string(after), "  # the base\n") {
				t.Errorf("the edit lost a comment:\n%s", after)
			}
			if st, err := os.Stat(filepath.Join(dir, FileName)); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("image.yaml's permissions: %v %v, want 0640", st.Mode(), err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 2 {
				t.Errorf("the edit left files behind: %v", entries)
			}
		})
	}
}

// Two bumps of one folder at once both land: neither reads the file
// while the other is replacing it, nor shares its temporary file.
func TestEditDefinition_Concurrent(t *testing.T) {
	dir := editFolder(t)
	for i := 1; i <= 20; i++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, k := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = SetVariables(dir, map[string]string{k: fmt.Sprint(i)})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		def, err := Find(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if def.Vars["a"] != fmt.Sprint(i) || def.Vars["b"] != fmt.Sprint(i) {
			t.Fatalf("round %d: a=%s b=%s: an edit was lost", i, def.Vars["a"], def.Vars["b"])
		}
	}
}
