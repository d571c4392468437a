// Package demo prepares the offline stand-ins that let `agentforge demo` run
// the whole release on a machine that reaches only Debian's archive: a
// Debian 13 (trixie) base made with debootstrap instead of Ubuntu 24.04 (it
// has the same OpenJDK 21 package), CPython's source tarball from Debian's
// source archive served under python.org's layout, Debian's own pip,
// setuptools, wheel and packaging wheels served under PyPI's layout, and a
// clearly labelled stand-in for the Jenkins remoting jar that java starts.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
)

// CPython 3.11.2 as Debian ships it: python3.11_3.11.2.orig.tar.gz is
// byte-identical to python.org's Python-3.11.2.tgz.
const (
	PythonVersion = "3.11.2"
	PythonSHA256  = "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
	debianPython  = "pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz"
	// Suite is the Debian release the base is made of: it has
	// openjdk-21-jre-headless, as Ubuntu 24.04 does (bookworm has 17 only).
	Suite = "trixie"
	// BaseName and BaseTag name the debootstrap base in local storage.
	BaseName = "debian-" + Suite + "-minbase"
	BaseTag  = "debootstrap"
)

// StandIn records one thing the demo uses instead of the real one.
type StandIn struct {
	What    string `json:"what"`
	Instead string `json:"instead"`
	Why     string `json:"why"`
}

// Env is a prepared demo environment.
type Env struct {
	// BaseImage is the local reference of the debootstrap base.
	BaseImage string
	// Overrides and the build option fields make python-agent build offline.
	Overrides     map[string]string
	SourceMirrors []remote.Mirror
	SkipSignature map[string]bool
	StandIns      []StandIn

	server *http.Server
}

// PodCheck is the script the demo runs in the built image the way a
// Kubernetes pod runs it: Java (21 or later) and the agent jar starting,
// CPython's modules, the pinned pip, setuptools and wheel (also in a new
// venv), git lfs, the jenkins user's subordinate ids, rootless podman
// (overlay storage, a build with a RUN step, a run), SIGTERM ending the
// agent through the init, and last the image's entrypoint started as PID 1,
// which must put catatonit there and reap orphans.
//
//go:embed podcheck.sh
var PodCheck string

// Optimize keeps the definition's PGO + LTO CPython build instead of the
// demo's plain one.
func (e *Env) Optimize() {
	delete(e.Overrides, "python.optimize")
	var kept []StandIn
	for _, s := range e.StandIns {
		if !strings.HasPrefix(s.What, "PGO + LTO") {
			kept = append(kept, s)
		}
	}
	e.StandIns = kept
}

// Close stops the stand-in source server.
func (e *Env) Close() error {
	if e.server == nil {
		return nil
	}
	return e.server.Close()
}

// Prepare builds the base image (once; it is reused from the store),
// downloads and checks the CPython tarball and the Debian wheel packages,
// makes the stand-in jar and starts a local HTTP server that serves them
// under the upstream layouts.
func Prepare(ctx context.Context, store storage.Store, def *images.Definition, workDir string, fetcher *source.Fetcher, out io.Writer, log logrus.FieldLogger) (*Env, error) {
	archive, err := DebianArchive()
	if err != nil {
		return nil, err
	}
	env := &Env{BaseImage: "localhost/" + BaseName + ":" + BaseTag, SkipSignature: map[string]bool{"python": true}}
	if err := prepareBase(ctx, store, archive, workDir, fetcher, out, log); err != nil {
		return nil, err
	}

	py, err := fetcher.Fetch(ctx, images.Source{Name: "python-debian", URL: strings.TrimSuffix(archive, "/") + "/" + debianPython, SHA256: PythonSHA256})
	if err != nil {
		return nil, fmt.Errorf("CPython source from Debian: %w", err)
	}
	remoting := def.Vars["remoting.version"]
	jar, err := standInJar(remoting)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(jar)
	wheels, err := prepareWheels(ctx, archive, filepath.Join(workDir, "pypi"), fetcher)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	for _, w := range wheels {
		mux.HandleFunc("/pypi/"+w.Path, func(rw http.ResponseWriter, r *http.Request) { http.ServeFile(rw, r, w.File) })
	}
	mux.HandleFunc(fmt.Sprintf("/python/%s/Python-%s.tgz", PythonVersion, PythonVersion), func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, py.Path)
	})
	jarPath := fmt.Sprintf("/remoting/%s/remoting-%s.jar", remoting, remoting)
	mux.HandleFunc(jarPath, func(w http.ResponseWriter, r *http.Request) { w.Write(jar) })
	mux.HandleFunc(jarPath+".sha1", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, hex.EncodeToString(sum[:])) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stand-in source server: %w", err)
	}
	env.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go env.server.Serve(ln)
	base := "http://" + ln.Addr().String()
	log.Infof("stand-in source server on %s", base)

	env.SourceMirrors = []remote.Mirror{
		{From: "https://www.python.org/ftp/python/", To: base + "/python/"},
		{From: "https://repo.jenkins-ci.org/public/org/jenkins-ci/main/remoting/", To: base + "/remoting/"},
		{From: PyPIFiles, To: base + "/pypi/"},
	}
	env.Overrides = map[string]string{
		"base.image":      env.BaseImage,
		"python.version":  PythonVersion,
		"python.sha256":   PythonSHA256,
		"python.format":   "tgz",
		"python.optimize": "",
	}
	for k, v := range wheelOverrides(wheels) {
		env.Overrides[k] = v
	}
	realWheels, debianWheels := wheelList(wheels, func(p string) string { return def.Vars[p+".version"] })
	env.StandIns = []StandIn{
		{What: "base image " + def.Base.Image, Instead: env.BaseImage + " (debootstrap --variant=minbase " + Suite + " from " + archive + "), with the same package names: " + def.Vars["java.package"] + " is Debian's OpenJDK build there",
			Why: "the Ubuntu archive and Docker Hub are not reachable here; the Containerfile only names packages that exist in both"},
		{What: "CPython 3.11.9 from python.org (Python-3.11.9.tar.xz)", Instead: "CPython " + PythonVersion + " from Debian's source archive (" + debianPython + ", byte-identical to python.org's Python-3.11.2.tgz, sha256 " + PythonSHA256 + "), served through --source-mirror",
			Why: "python.org is not reachable here"},
		{What: "OpenPGP signature check of the CPython tarball", Instead: "skipped (sha256 still checked)",
			Why: "Debian's archive carries no upstream .asc for the tarball and the keyserver is not reachable"},
		{What: realWheels + " from PyPI (files.pythonhosted.org)", Instead: debianWheels + ": the wheels in Debian " + Suite + "'s python3-*-whl packages (pinned by sha256), served under PyPI's layout through --source-mirror",
			Why: "PyPI is not reachable here"},
		{What: "PGO + LTO CPython build (--enable-optimizations --with-lto)", Instead: "a plain build",
			Why: "keeps the demo to a few minutes on 2 cores; the real definition keeps them on"},
		{What: "Jenkins remoting " + remoting + " (agent.jar from repo.jenkins-ci.org)", Instead: "a stand-in jar (main class " + StandInMainClass + ", generated by agentforge) that java starts: -version prints " + remoting + " and says it is a stand-in, otherwise it waits like an agent until a signal; with a .sha1 sidecar, served through --source-mirror",
			Why: "repo.jenkins-ci.org is not reachable and no offline copy of remoting exists here"},
	}
	return env, nil
}

// prepareBase makes the trixie base image unless the store has it.
func prepareBase(ctx context.Context, store storage.Store, archive, workDir string, fetcher *source.Fetcher, out io.Writer, log logrus.FieldLogger) error {
	if _, err := oci.LocalImage(store, "localhost/"+BaseName+":"+BaseTag); err == nil {
		log.Infof("base image localhost/%s:%s already in storage", BaseName, BaseTag)
		return nil
	}
	rootfs := filepath.Join(workDir, Suite+"-rootfs.tar")
	if _, err := os.Stat(rootfs); err != nil {
		if _, err := builder.LookTool("debootstrap"); err != nil {
			return fmt.Errorf("the demo's base image: %w", err)
		}
		dir := filepath.Join(workDir, Suite)
		os.RemoveAll(dir)
		log.Infof("debootstrap --variant=minbase %s from %s (about 30 s)", Suite, archive)
		cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", Suite, dir, archive)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("debootstrap %s: %w", Suite, err)
		}
		// Clean what debootstrap leaves that does not belong in an image.
		os.RemoveAll(filepath.Join(dir, "var/cache/apt/archives"))
		os.MkdirAll(filepath.Join(dir, "var/cache/apt/archives/partial"), 0o755)
		tmp := rootfs + ".tmp"
		tar := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "-C", dir, "-cf", tmp, ".")
		tar.Stderr = out
		if err := tar.Run(); err != nil {
			return fmt.Errorf("tar the %s root file system: %w", Suite, err)
		}
		if err := os.Rename(tmp, rootfs); err != nil {
			return err
		}
		os.RemoveAll(dir)
	}
	defDir := filepath.Join(workDir, "base-definition")
	if err := os.MkdirAll(defDir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"image.yaml": fmt.Sprintf(`name: %s
version: %s
description: Debian %s (debootstrap --variant=minbase), the demo's offline stand-in for Ubuntu.
base: {image: scratch}
sourceDateEpoch: 1700000000
labels:
  io.agentforge.stand-in: "true"
sources:
  - name: rootfs
    url: file://%s
    dest: rootfs.tar
`, BaseName, BaseTag, Suite, rootfs),
		"Containerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nADD rootfs.tar /\nCMD [\"bash\"]\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(defDir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	fsys, name, err := images.Open(defDir)
	if err != nil {
		return err
	}
	def, err := images.Load(fsys, name, nil)
	if err != nil {
		return err
	}
	_, err = builder.Build(ctx, def, builder.BuildOptions{Store: store, Fetcher: fetcher, Output: out, Log: log})
	if err != nil {
		return fmt.Errorf("demo base image: %w", err)
	}
	return nil
}

// DebianArchive returns the Debian archive URL apt is configured with.
func DebianArchive() (string, error) {
	return debianArchive("/etc/apt/sources.list.d", "/etc/apt/sources.list")
}

func debianArchive(sourcesDir, sourcesList string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(sourcesDir, "*.sources"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "URIs:"); ok {
				for _, u := range strings.Fields(v) {
					if strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
						return strings.TrimSuffix(u, "/"), nil
					}
				}
			}
		}
	}
	if data, err := os.ReadFile(sourcesList); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && strings.HasSuffix(strings.TrimSuffix(f[1], "/"), "/debian") {
				return strings.TrimSuffix(f[1], "/"), nil
			}
		}
	}
	return "", fmt.Errorf("no Debian archive found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")
}
