// Package progress reports long transfers as they go: a blob pushed,
// pulled or mirrored, a layer compressed or verified, a source
// downloaded. Code that moves bytes starts a Bar on the Reporter it was
// given and counts what it moves; the caller decides how that is shown:
// live bars on a terminal (the command line does that), periodic log
// lines for a Jenkins console or a file (Log), or nothing.
//
// It imports only the standard library, so every package may use it.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Reporter starts a Bar for each transfer. A nil Reporter reports nothing.
type Reporter interface {
	// Start begins one transfer: what names it ("push sha256:ab12… to
	// registry.example/agents/app"), total is its size in bytes (0 or
	// less: unknown).
	Start(what string, total int64) Bar
}

// Bar is one transfer's progress. Its methods are safe for concurrent use.
type Bar interface {
	// Add counts n more bytes done.
	Add(n int)
	// Done ends the transfer: completed when err is nil, else failed.
	Done(err error)
}

// Start is r.Start, or a Bar that counts nothing when r is nil.
func Start(r Reporter, what string, total int64) Bar {
	if r == nil {
		return nop{}
	}
	return r.Start(what, total)
}

type nop struct{}

func (nop) Add(int)    {}
func (nop) Done(error) {}

// Reader counts on b every byte read from r.
func Reader(r io.Reader, b Bar) io.Reader { return io.TeeReader(r, adder{b}) }

// Writer counts on b every byte written to w.
func Writer(w io.Writer, b Bar) io.Writer { return io.MultiWriter(w, adder{b}) }

// adder is an io.Writer that counts what it is given on a Bar.
type adder struct{ b Bar }

func (a adder) Write(p []byte) (int, error) {
	a.b.Add(len(p))
	return len(p), nil
}

// Log is a Reporter for a console that is not a terminal (a Jenkins log,
// a file): a transfer longer than Every gets a line every Every, with
// what it is, how far it is and its rate; nothing is redrawn, so there are
// no carriage returns or escape codes.
type Log struct {
	// Printf writes one line (a logger's Infof).
	Printf func(format string, args ...any)
	// Every is the interval between lines; 0 means 10 s.
	Every time.Duration
}

// Start implements Reporter.
func (l *Log) Start(what string, total int64) Bar {
	every := l.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	now := time.Now()
	return &logBar{l: l, what: what, total: total, start: now, next: now.Add(every), every: every}
}

type logBar struct {
	l     *Log
	what  string
	total int64
	every time.Duration

	mu    sync.Mutex
	n     int64
	start time.Time
	next  time.Time
}

func (b *logBar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	if now := time.Now(); now.After(b.next) {
		b.next = now.Add(b.every)
		b.l.Printf("%s: %s", b.what, Describe(b.n, b.total, now.Sub(b.start)))
	}
}

func (b *logBar) Done(error) {}

// Describe says how far a transfer is: "12 of 40 MiB (30%), 4.1 MiB/s, 7s
// left", or without a total "12 MiB, 4.1 MiB/s".
func Describe(n, total int64, elapsed time.Duration) string {
	rate := float64(n) / elapsed.Seconds()
	s := fmt.Sprintf("%s MiB", mib(n))
	if total > 0 {
		s = fmt.Sprintf("%s of %s MiB (%d%%)", mib(n), mib(total), n*100/total)
	}
	if elapsed > 0 {
		s += fmt.Sprintf(", %s MiB/s", mib(int64(rate)))
		if total > n && rate > 0 {
			s += fmt.Sprintf(", %s left", time.Duration(float64(total-n)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	return s
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// None is a Reporter that shows nothing, for callers whose nil Reporter
// means a default.
var None Reporter = none{}

type none struct{}

func (none) Start(string, int64) Bar { return nop{} }

// Counter is a reader that counts the bytes read through it and notes
// whether the stream was read to its end (whether a consumer read the
// whole blob, or stopped early because it had it already).
type Counter struct {
	R io.Reader
	// N is the number of bytes read so far.
	N int64
	// EOF is set once R returned io.EOF.
	EOF bool
}

func (c *Counter) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	if err == io.EOF {
		c.EOF = true
	}
	return n, err
}
