package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/agentforge/agentforge/images/redact"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"golang.org/x/term"
)

// app holds the global flags and the output streams of one invocation.
type app struct {
	stdout, stderr io.Writer

	output        string
	logFormat     string
	logLevel      string
	storageRoot   string
	storageDriver string
	insecure      []string
	authFile      string
	caFile        string
	progressMode  string

	// progress shows long transfers (--progress).
	progress progress.Reporter

	log     *logrus.Logger
	printed bool // a result was written to stdout
	// result is the command's JSON result, written when it ends, with the
	// error and exit code of a failure.
	result any
	// secrets holds every credential this run sends (registry passwords
	// and tokens, the Jenkins token): errors, JSON and log lines are
	// redacted through it.
	secrets *redact.Set
	// cleanups run when the command ends.
	cleanups []func()
}

// run executes the CLI with args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, secrets: redact.New()}
	// Credentials belong in the auth file; one typed into a reference or
	// URL anyway is refused or never sent, and never echoed either.
	for _, arg := range args {
		if user, password, ok := argCredentials(arg); ok {
			a.secrets.AddBasic(user, password)
		}
	}
	root := a.rootCommand()
	root.SetArgs(args)
	jsonLogs := wantsJSONLogs(args)
	ctx, stop := interruptContext(stderr, jsonLogs)
	err := root.ExecuteContext(ctx)
	for _, c := range a.cleanups {
		c()
	}
	endAdopted(stderr, a.logFormat == "json" || jsonLogs)
	stop() // an interrupt's acknowledgment comes before the outcome
	if err == nil {
		if a.result != nil {
			a.writeJSON(a.result)
		}
		return exitOK
	}
	if msg := err.Error(); strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "required flag") {
		err = errs.Input(err)
	}
	if cause := context.Cause(ctx); errors.Is(err, context.Canceled) && cause != nil && cause != context.Canceled {
		// "context canceled" alone does not say who cancelled.
		err = fmt.Errorf("stopped (%v): %w", cause, err)
	}
	err = a.secrets.Error(withHints(err))
	code := exitCode(err)
	// Before setup (a.log unset), --log-format may not have been parsed
	// (an unknown command or flag ahead of it): look for it, as for -o.
	// Every line on stderr a JSON object with JSON logs, the failure's too.
	ownLine(stderr, a.logFormat == "json" || (a.log == nil && jsonLogs), logrus.ErrorLevel, err.Error(), logrus.Fields{"exitCode": code})
	// A command line that failed to parse may never have set --output:
	// look for it, so that a script asking for JSON always gets it.
	switch {
	case a.result != nil:
		// A report of what was done before the failure, with it.
		a.writeJSON(withError(a.result, err.Error(), code))
	case (a.output == "json" || wantsJSON(args)) && !a.printed:
		a.writeJSON(map[string]any{"error": err.Error(), "exitCode": code})
	}
	return code
}

// withError adds a failure's "error" and "exitCode" to a command's JSON
// result, so that every failure carries them.
func withError(result any, msg string, code int) any {
	var m map[string]json.RawMessage
	b, err := json.Marshal(result)
	if err != nil || json.Unmarshal(b, &m) != nil || m == nil {
		return map[string]any{"error": msg, "exitCode": code, "result": result}
	}
	m["error"], _ = json.Marshal(msg)
	m["exitCode"], _ = json.Marshal(code)
	return m
}

// interruptContext is cancelled by the first SIGINT or SIGTERM, which it
// acknowledges on stderr. A second one ends agentforge at once, by that
// signal, whatever the step: c/image finishes compressing a layer before
// it looks at the context, and during a RUN step buildah catches SIGINT
// and SIGTERM itself (run_common.go, signal.Notify), so the signal's
// default effect alone would not end the process. The function it returns
// stops it, once the acknowledgment is written.
func interruptContext(stderr io.Writer, jsonLogs bool) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, watched()...)
	stopped := make(chan struct{})
	acked := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			cause := signalError{sig}
			cancel(cause)
			ownLine(stderr, jsonLogs, logrus.WarnLevel, fmt.Sprintf("%v: stopping; interrupt again to stop at once", cause), nil)
			close(acked)
		case <-stopped:
			close(acked)
			return
		}
		select {
		case sig := <-sigs:
			endAdopted(stderr, jsonLogs)
			dieBy(sig.(syscall.Signal))
		case <-stopped:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(stopped)
			<-acked
			cancel(context.Canceled)
		})
	}
}

// watched are the signals interruptContext catches: SIGTERM, and SIGINT
// unless it was ignored when the process started (a script's background
// job, which a Ctrl-C meant for the script's foreground command must leave
// running): signal.Notify would stop ignoring it.
func watched() []os.Signal {
	if signal.Ignored(syscall.SIGINT) {
		return []os.Signal{syscall.SIGTERM}
	}
	return []os.Signal{os.Interrupt, syscall.SIGTERM}
}

// signalError is the cause of a run stopped by a signal. Like
// os/signal.NotifyContext's, it is a context.Canceled, so that what
// reports the context's cause (net/http does) still reads as cancelled.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return e.sig.String() + " signal received" }

// Is reports whether target is context.Canceled.
func (e signalError) Is(target error) bool { return target == context.Canceled }

// dieBy ends the process by sig, as its default action would, so that a
// parent sees it killed by the signal; others' handlers for it are undone
// first. Where the signal does not end it (PID 1 of a container has no
// default actions), it exits with status 128+sig, as a shell reports a
// death by the signal.
func dieBy(sig syscall.Signal) {
	signal.Reset(sig)
	syscall.Kill(os.Getpid(), sig)
	time.Sleep(100 * time.Millisecond)
	os.Exit(128 + int(sig))
}

// ownLine writes a line of agentforge's own to stderr, outside the run's
// logger (before it is set up, or after it is gone): with JSON logs, a
// JSON log object at level with fields, as every other line; otherwise
// "agentforge: msg" ("agentforge: error: msg" for an error).
func ownLine(stderr io.Writer, jsonLogs bool, level logrus.Level, msg string, fields logrus.Fields) {
	if jsonLogs {
		l := logrus.New()
		l.Out, l.Formatter = stderr, &logrus.JSONFormatter{}
		l.WithFields(fields).Log(level, msg)
		return
	}
	if level <= logrus.ErrorLevel {
		msg = "error: " + msg
	}
	fmt.Fprintf(stderr, "agentforge: %s\n", msg)
}

// wantsJSONLogs reports whether args ask for --log-format json, read
// before they are parsed (a signal may come first).
func wantsJSONLogs(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--log-format=json":
			return true
		case a == "--log-format" && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// argCredentials returns the user and password an argument carries in a
// URL or an image reference: [scheme://]user:password@host/…, also as the
// value of --flag=….
func argCredentials(arg string) (user, password string, ok bool) {
	s := arg
	// The last URL of the argument: a --source-mirror FROM=TO has the
	// mirror's, which may carry credentials, second.
	scheme := strings.LastIndex(s, "://")
	if scheme >= 0 {
		s = s[scheme+len("://"):]
	} else if strings.HasPrefix(s, "-") {
		if _, v, found := strings.Cut(s, "="); found {
			s = v
		}
	}
	// The last '@' that does not start a digest ends the user information.
	at := -1
	for i := range len(s) {
		if s[i] == '@' && !strings.HasPrefix(s[i+1:], "sha256:") && !strings.HasPrefix(s[i+1:], "sha512:") {
			at = i
		}
	}
	if at < 0 {
		return "", "", false
	}
	user, password, ok = strings.Cut(s[:at], ":")
	if scheme < 0 {
		// The value of a key=value (--registry-mirror
		// docker.io=alice:pw@mirror.example): the user follows the key.
		user = user[strings.LastIndex(user, "=")+1:]
	}
	// No user name has a space in it: "Jane Doe:jane@example.com" is none.
	if !ok || password == "" || strings.ContainsAny(user, "/@ \t\n") {
		return "", "", false
	}
	return user, password, true
}

// wantsJSON reports whether args ask for JSON output (-o json, -ojson,
// --output json, --output=json), whether or not they parsed.
func wantsJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-ojson", a == "--output=json", a == "-o=json":
			return true
		case (a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "agentforge",
		Short: "Build, verify, publish and register Jenkins agent container images",
		Long: `agentforge builds Jenkins agent images with the buildah library (in-process),
verifies every layer, publishes byte-identical images to registries and mirrors,
and registers them in Jenkins pinned by digest.

Exit codes: 0 success, 1 runtime failure, 2 bad input, 3 integrity failure,
4 Jenkins refused.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints the same line as the version command.
		Version: currentVersion(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup()
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate(versionLine(versionInfo()))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return errs.Input(err) })
	f := root.PersistentFlags()
	f.StringVarP(&a.output, "output", "o", "text", "result format: text or json (json: one object on stdout, logs on stderr)")
	f.StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")
	f.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&a.storageRoot, "storage-root", "", "containers-storage graph root (default: the system's, /var/lib/containers/storage for root)")
	f.StringVar(&a.storageDriver, "storage-driver", "", "containers-storage driver: overlay or vfs (default: the system's)")
	f.StringArrayVar(&a.insecure, "insecure-registry", nil, "registry HOST[:PORT] reached over plain HTTP or without TLS verification (repeatable)")
	f.StringVar(&a.authFile, "authfile", "", "registry credentials file (docker config.json / containers auth.json; default $REGISTRY_AUTH_FILE or the usual places)")
	f.StringVar(&a.caFile, "ca-file", "", "PEM file of extra CA certificates trusted for registries")
	f.StringVar(&a.progressMode, "progress", "auto", "how long transfers are shown: tty (live bars), plain (a log line every 10 s of a long one), none; auto: tty when stderr is a terminal and --log-format text, else plain")
	root.AddCommand(a.buildCommand(), a.verifyCommand(), a.versionCommand(), a.demoCommand(), a.runCommand(), a.registerCommand(), a.publishCommand(), a.mirrorCommand(), a.registryCommand(), a.rewriteCommand(), a.releaseCommand(), a.pythonCommand(), a.indexCommand(), a.keygenCommand(), a.signCommand(), a.signBlobCommand(), a.verifyBlobCommand(), a.outdatedCommand(), a.bumpCommand())
	return root
}

// setup validates the global flags and configures logging.
func (a *app) setup() error {
	switch a.output {
	case "text", "json":
	default:
		return errs.Inputf("--output %q: want text or json", a.output)
	}
	a.log = logrus.New()
	a.log.Out = a.stderr
	switch a.logFormat {
	case "json":
		a.log.Formatter = &logrus.JSONFormatter{}
	case "text":
		tf := &logrus.TextFormatter{FullTimestamp: true}
		if f, ok := a.stderr.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
			tf.DisableColors = true
		}
		a.log.Formatter = tf
	default:
		return errs.Inputf("--log-format %q: want text or json", a.logFormat)
	}
	a.log.Formatter = redactFormatter{a.log.Formatter, a.secrets}
	lvl, err := logrus.ParseLevel(a.logLevel)
	if err != nil {
		return errs.Inputf("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	a.log.Level = lvl
	if err := a.setupProgress(); err != nil {
		return err
	}
	// The containers libraries log through logrus' standard logger: same
	// output and format, and their chatter ("using prior storage driver",
	// "forcing host network") only at debug.
	std := logrus.StandardLogger()
	std.Out, std.Formatter = a.stderr, clientErrorFilter{a.log.Formatter}
	std.Level = logrus.WarnLevel
	if lvl >= logrus.DebugLevel {
		std.Level, std.Formatter = lvl, a.log.Formatter // everything, at debug
	}
	return nil
}

// openStore opens local storage from the global flags. The caller defers
// a.closeStore.
func (a *app) openStore() (storage.Store, error) {
	return builder.OpenStore(builder.StoreOptions{Root: a.storageRoot, Driver: a.storageDriver})
}

// parseRef parses a user's image reference (see oci.ParseReference),
// opening local storage for a local one; the store is closed when the
// command ends.
func (a *app) parseRef(arg string) (types.ImageReference, error) {
	var store storage.Store
	if oci.IsLocal(arg) {
		s, err := a.openStore()
		if err != nil {
			return nil, err
		}
		a.cleanups = append(a.cleanups, func() { a.closeStore(s) })
		store = s
	}
	return oci.ParseReference(arg, store)
}

func (a *app) closeStore(s storage.Store) {
	if err := builder.CloseStore(s); err != nil {
		a.log.Warn(err)
	}
}

// hosts opens the one registry configuration of this run from the global
// registry flags, with mirrors for pulls and the retry policy; its files
// are removed when the command ends.
func (a *app) hosts(mirrors []remote.Mirror, retry remote.RetryPolicy) (*remote.Hosts, error) {
	r := remote.Registries{Mirrors: mirrors, Insecure: a.insecure, AuthFile: a.authFile, CAFile: a.caFile, Secrets: a.secrets, Retry: retry, Log: a.log}
	h, cleanup, err := r.OpenTemp()
	if err != nil {
		return nil, err
	}
	a.cleanups = append(a.cleanups, cleanup)
	return h, nil
}

// emit prints a command's result: JSON on stdout (when the command ends,
// with its error if it fails), or text through textFn, with every
// credential the run knows of removed.
func (a *app) emit(result any, textFn func(w io.Writer)) {
	if a.output == "json" {
		a.result, a.printed = result, true
		return
	}
	var b strings.Builder
	textFn(&b)
	io.WriteString(a.stdout, a.secrets.String(b.String()))
	a.printed = true
}

func (a *app) writeJSON(v any) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(a.stderr, "agentforge: writing JSON: %v\n", err)
	}
	io.WriteString(a.stdout, a.secrets.String(b.String()))
	a.printed = true
}

// defaultCacheDir is where downloaded sources are kept between runs.
func defaultCacheDir() string {
	if d := os.Getenv("AGENTFORGE_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/agentforge"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "agentforge")
	}
	return filepath.Join(os.TempDir(), "agentforge-cache")
}

// redactFormatter removes every credential the run knows of from a log
// line (a library may log a registry's error page, which can echo one).
type redactFormatter struct {
	logrus.Formatter
	secrets *redact.Set
}

func (f redactFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.Formatter.Format(e)
	if err != nil || b == nil {
		return b, err
	}
	return []byte(f.secrets.String(string(b))), nil
}

// clientErrorFilter drops the lines an embedded registry (distribution,
// which logs through the standard logger) writes at error level for its
// clients' errors: a 404 for a blob a push checks before sending it is how
// pushing works, not a failure. Its server errors (5xx) stay, and so does
// everything at --log-level debug and under `registry serve`, whose
// operator wants its clients' errors.
type clientErrorFilter struct{ logrus.Formatter }

func (f clientErrorFilter) Format(e *logrus.Entry) ([]byte, error) {
	if s, ok := e.Data["http.response.status"]; ok {
		if n, err := strconv.Atoi(fmt.Sprint(s)); err == nil && n < 500 {
			return nil, nil
		}
	}
	return f.Formatter.Format(e)
}
