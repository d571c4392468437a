package update

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/agentforge/agentforge/builder/source/sourcetest"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/ulikunitz/xz"
)

// fakeArchive serves Debian's archive and security archive layouts: each
// suite's InRelease, signed with the archive's key, and its main Packages
// index (xz, gzip or plain), also by hash.
type fakeArchive struct {
	srv *httptest.Server
	key *openpgp.Entity
	mu  sync.Mutex
	// files are served by path; requests are counted by path.
	files    map[string][]byte
	requests map[string]int
}

func newFakeArchive(t *testing.T) *fakeArchive {
	a := &fakeArchive{files: map[string][]byte{}, requests: map[string]int{}, key: archiveKeys(t)[0].entity}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		data, ok := a.files[r.URL.Path]
		a.requests[r.URL.Path]++
		a.mu.Unlock()
		if ok {
			w.Write(data)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// archiveKeys are two signing keys, made once (RSA keys take a while):
// the archive's, and someone else's.
func archiveKeys(t testing.TB) [2]testKey {
	keysOnce.Do(func() {
		for i, name := range []string{"Fake Archive", "Someone Else"} {
			e, _, pub := sourcetest.Key(t, name)
			madeKeys[i] = testKey{e, string(pub)}
		}
	})
	return madeKeys
}

var (
	keysOnce sync.Once
	madeKeys [2]testKey
)

// testKey is a signing key and its armored public part (an .asc keyring).
type testKey struct {
	entity *openpgp.Entity
	public string
}

// keyring is the archive's public key as an image's apt holds it.
func (a *fakeArchive) keyring(t testing.TB) string { return archiveKeys(t)[0].public }

// suite publishes suite name under base: its main Packages index, in
// compression (xz, gz, or "" for plain), also by hash, and an InRelease
// signed with the archive's key that lists it, with header's fields
// ("Field: value\n" lines) after Suite and Codename, and a Date of now
// unless header has one.
func (a *fakeArchive) suite(t *testing.T, base, name, header, packages, compression string) {
	t.Helper()
	var buf bytes.Buffer
	ext := ""
	switch compression {
	case "xz":
		w, _ := xz.NewWriter(&buf)
		w.Write([]byte(packages))
		w.Close()
		ext = ".xz"
	case "gz":
		w := gzip.NewWriter(&buf)
		w.Write([]byte(packages))
		w.Close()
		ext = ".gz"
	default:
		buf.WriteString(packages)
	}
	dists := base + "/dists/" + name
	index := buf.Bytes()
	sum := sha256.Sum256(index)
	a.mu.Lock()
	a.files[dists+"/main/binary-amd64/Packages"+ext] = index
	a.files[fmt.Sprintf("%s/main/binary-amd64/by-hash/SHA256/%x", dists, sum)] = index
	a.mu.Unlock()
	if !strings.Contains(header, "Date: ") {
		header = "Date: " + time.Now().UTC().Format(time.RFC1123) + "\n" + header
	}
	a.release(t, base, name, fmt.Sprintf("Suite: %s\nCodename: %s\n%sAcquire-By-Hash: yes\nSHA256:\n %x %d main/binary-amd64/Packages%s\n",
		name, name, header, sum, len(index), ext))
}

// release serves text, signed with the archive's key, as suite name's
// InRelease.
func (a *fakeArchive) release(t *testing.T, base, name, text string) {
	data := sourcetest.ClearSign(t, text, a.key)
	a.mu.Lock()
	a.files[base+"/dists/"+name+"/InRelease"] = data
	a.mu.Unlock()
}

// A Packages index larger than maxIndex uncompressed is an error, not read
// in part: the packages past the bound would be missed, and their pending
// updates hidden. One at the bound is read whole.
func TestArchive_PackagesTooLarge(t *testing.T) {
	index := stanza("libc6", "2.41-12", "amd64") + stanza("openssl", "3.5.1-1", "amd64")
	a := newFakeArchive(t)
	a.suite(t, "/debian", "trixie", "Version: 13.0\n", index, "xz")
	ar := &archive{keys: openpgp.EntityList{a.key}}
	dists := a.srv.URL + "/debian/dists/trixie"
	release, err := ar.get(context.Background(), dists+"/InRelease", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := readInRelease(release, "trixie", ar.keys, ar.clock())
	if err != nil {
		t.Fatal(err)
	}
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
		err := ar.packages(context.Background(), dists, "main/binary-amd64/Packages", idx, func(e indexEntry) { got = append(got, e.Name) })
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("bound %d: %v, want an error saying %q", tc.bound, err, tc.err)
		case tc.err == "" && (err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",")):
			t.Errorf("bound %d: %q, %v; want %q", tc.bound, got, err, tc.want)
		}
	}
}

// An index is parsed only once its bytes are those its InRelease lists.
// Before, it was parsed while it was read and checked at the end, so an
// attacker's index, a few kB compressed, of one field with millions of
// continuation lines (which the deb822 reader now keeps for kept fields)
// made the check allocate without bound before the mismatch was seen.
func TestReadIndex_NotParsedBeforeItIsChecked(t *testing.T) {
	var plain bytes.Buffer
	plain.WriteString("Package: a\n")
	plain.WriteString(strings.Repeat(" x\n", 4<<20))
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain.Bytes())
	w.Close()
	// What the InRelease lists: another file of the same size.
	other := bytes.Repeat([]byte{0}, gz.Len())
	s := sha256.Sum256(other)
	sum := indexSum{sha256: hex.EncodeToString(s[:]), size: int64(gz.Len())}
	called := 0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := readIndex(bytes.NewReader(gz.Bytes()), ".gz", sum, func(indexEntry) { called++ })
	runtime.ReadMemStats(&after)
	if err == nil || !errors.Is(err, errs.ErrIntegrity) {
		t.Fatalf("%v, want an integrity error", err)
	}
	if called != 0 {
		t.Errorf("fn called %d times for an index that is not the one listed", called)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
		t.Errorf("allocated %d MB reading a %d kB index that is not the one listed", n>>20, gz.Len()>>10)
	}
}
