package progress_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentforge/agentforge/images/progress"
)

func TestDescribe(t *testing.T) {
	cases := []struct {
		n, total int64
		elapsed  time.Duration
		want     string
	}{
		{10 << 20, 40 << 20, 2 * time.Second, "10.0 of 40.0 MiB (25%), 5.0 MiB/s, 6s left"},
		{40 << 20, 40 << 20, 4 * time.Second, "40.0 of 40.0 MiB (100%), 10.0 MiB/s"},
		{3 << 20, 0, time.Second, "3.0 MiB, 3.0 MiB/s"},
		{3 << 20, -1, 0, "3.0 MiB"},
		{0, 40 << 20, time.Second, "0.0 of 40.0 MiB (0%), 0.0 MiB/s"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := progress.Describe(tc.n, tc.total, tc.elapsed); got != tc.want {
				t.Errorf("Describe(%d, %d, %s) = %q", tc.n, tc.total, tc.elapsed, got)
			}
		})
	}
}

// A transfer longer than Every gets lines, as plain text, from however
// many goroutines count on it; a short one gets none.
func TestLog_LinesForLongTransfersOnly(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	l := &progress.Log{Every: 20 * time.Millisecond, Printf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&out, format+"\n", args...)
	}}

	short := l.Start("short", 10)
	short.Add(10)
	short.Done(nil)

	long := l.Start("push sha256:ab12 to reg/app", 4<<20)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for range 16 {
				time.Sleep(2 * time.Millisecond)
				long.Add(len(buf))
			}
		}()
	}
	wg.Wait()
	long.Done(nil)

	mu.Lock()
	defer mu.Unlock()
	got := out.String()
	if strings.Contains(got, "short") {
		t.Errorf("a transfer shorter than Every was logged:\n%s", got)
	}
	if !strings.Contains(got, "push sha256:ab12 to reg/app: ") || !strings.Contains(got, "of 4.0 MiB") {
		t.Errorf("no progress line for the long transfer:\n%s", got)
	}
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("log lines carry carriage returns or escape codes:\n%q", got)
	}
}

// Reader and Writer count exactly what passed through them, errors
// included, and a nil Reporter costs nothing.
func TestReaderWriterCount(t *testing.T) {
	c := &counter{}
	var dst bytes.Buffer
	w := progress.Writer(&dst, c)
	r := progress.Reader(strings.NewReader("hello, world"), c)
	buf := make([]byte, 5)
	n, _ := r.Read(buf)
	w.Write(buf[:n])
	if c.n != 2*n || dst.String() != "hello" {
		t.Errorf("counted %d for %d bytes read and written", c.n, n)
	}
	b := progress.Start(nil, "nothing", 1)
	b.Add(1)
	b.Done(errors.New("x"))
	progress.None.Start("x", 1).Add(1)
}

type counter struct{ n int }

func (c *counter) Add(n int)  { c.n += n }
func (c *counter) Done(error) {}
