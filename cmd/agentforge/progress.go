package main

import (
	"io"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressModes are --progress's values.
const progressModes = "auto, tty, plain or none"

// setupProgress chooses how long transfers are shown: live bars on a
// terminal, a log line every 10 seconds elsewhere (a Jenkins console
// shows no carriage returns), or nothing. With bars, everything written to
// stderr goes through the bars' renderer so that log lines print above
// them instead of through them.
func (a *app) setupProgress() error {
	mode := a.progressMode
	if mode == "auto" {
		mode = "plain"
		if terminalWidth(a.stderr) > 0 && a.logFormat == "text" {
			mode = "tty"
		}
	}
	switch mode {
	case "tty":
		// mpb draws (and prints what is written above its bars) only on a
		// terminal: elsewhere log lines would be held back and lost.
		if terminalWidth(a.stderr) == 0 {
			return errs.Inputf("--progress tty: stderr is not a terminal (use plain, or auto)")
		}
		t := &terminalBars{out: a.stderr}
		a.progress, a.stderr, a.log.Out = t, t, t
	case "plain":
		a.progress = &progress.Log{Printf: a.log.Infof}
	case "none":
		a.progress = progress.None
	default:
		return errs.Inputf("--progress %q: want %s", a.progressMode, progressModes)
	}
	return nil
}

// terminalBars draws one bar per running transfer on a terminal. Between
// transfers no renderer runs, and writes go straight to the terminal.
type terminalBars struct {
	out io.Writer

	mu     sync.Mutex
	p      *mpb.Progress // nil when no transfer runs
	active int
}

// Start implements progress.Reporter.
func (t *terminalBars) Start(what string, total int64) progress.Bar {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p == nil {
		width := 40
		if w := terminalWidth(t.out); w > 100 {
			width = w - 60
		}
		t.p = mpb.New(mpb.WithOutput(t.out), mpb.WithWidth(width))
	}
	t.active++
	// Created without a total, which is set below: mpb completes a bar
	// made with one only when it is full, and a transfer may end short of
	// what was announced (a compressed stream, a blob the registry had).
	b := t.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(barName(what), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
		),
	)
	if total > 0 {
		b.SetTotal(total, false)
	}
	return &terminalBar{t: t, b: b}
}

// barName is what, fit for a terminal: no control characters (a name can
// come from a registry's answer) and at most 60 characters.
func barName(what string) string {
	r := []rune(strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return '?'
		}
		return c
	}, what))
	if len(r) > 60 {
		r = append(r[:59], '…')
	}
	return string(r)
}

// Write prints p above the running bars, or directly when none runs.
func (t *terminalBars) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p != nil {
		return t.p.Write(p)
	}
	return t.out.Write(p)
}

// done ends one transfer; the last one stops the renderer after its final
// frame, so nothing is left half drawn.
func (t *terminalBars) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.active == 0 {
		t.p.Wait()
		t.p = nil
	}
}

type terminalBar struct {
	t    *terminalBars
	b    *mpb.Bar
	once sync.Once
}

func (b *terminalBar) Add(n int) { b.b.IncrBy(n) }

func (b *terminalBar) Done(err error) {
	b.once.Do(func() {
		if err != nil {
			b.b.Abort(false)
		} else {
			b.b.SetTotal(-1, true)
		}
		b.t.done()
	})
}

// terminalWidth is w's width in columns when w is a terminal that has one
// (a terminal of no width, as script(1) without a terminal makes, shows
// no bars), else 0.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}
