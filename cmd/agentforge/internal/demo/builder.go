package demo

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher/sign"
	"gopkg.in/yaml.v3"
)

// The builder image's definition and the pod YAML beside it, in the
// source checkout (relative to its top).
const (
	BuilderDefinition = "images/agentforge"
	BuilderPodYAML    = "images/agentforge/pod.yaml"
	// BuilderContainer is the container of the pod YAML that runs agentforge.
	BuilderContainer = "agentforge"
	busyboxDef       = "testdata/busybox"
)

// builderPodScript is what the demo runs in the builder image as a pod:
// one testdata/busybox build with the agentforge inside.
//
//go:embed builderpod.sh
var builderPodScript string

// Builder is what the demo needs to build agentforge's own builder image
// from make dist's output and to run one build inside it.
type Builder struct {
	// Set are the definition's overrides: make dist's folder, the version,
	// the demo's base image.
	Set map[string]string
	// Pod is the check run in the built image as a pod runs it.
	Pod      string
	PodRun   builder.PodRunOptions
	StandIns []StandIn
	// Revision is recorded in the busybox image built in the pod and the
	// one built on this machine to compare with; Archive is the Debian
	// archive both download busybox from.
	Revision, Archive string
}

// PrepareBuilder checks make dist's folder (its SHA256SUMS signature with
// the public key beside it, and a binary for this machine's platform) and
// says how to build images/agentforge from it on top of baseImage, and how
// to run testdata/busybox's build inside it.
func PrepareBuilder(ctx context.Context, distDir, version, baseImage, revision string) (*Builder, error) {
	dist, err := filepath.Abs(distDir)
	if err != nil {
		return nil, err
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		return nil, fmt.Errorf("the builder image needs make dist's output in %s: %w", distDir, err)
	}
	sig, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS.sig"))
	if err != nil {
		return nil, fmt.Errorf("make dist's signature: %w", err)
	}
	pub, err := sign.LoadPublicKey(filepath.Join(dist, "agentforge.pub"))
	if err != nil {
		return nil, err
	}
	if err := sign.VerifyBlob(pub, sums, sig); err != nil {
		return nil, fmt.Errorf("%s/SHA256SUMS: %w", distDir, err)
	}
	host := oci.HostPlatform()
	if !strings.Contains(string(sums), " agentforge-"+host.OS+"-"+host.Arch+"\n") {
		return nil, fmt.Errorf("%s/SHA256SUMS has no agentforge-%s-%s: run make dist", distDir, host.OS, host.Arch)
	}
	busybox, err := filepath.Abs(busyboxDef)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(busybox, "image.yaml")); err != nil {
		return nil, fmt.Errorf("the build in the builder image needs the source checkout's %s (run the demo from it): %w", busyboxDef, err)
	}
	archive, err := DebianArchive()
	if err != nil {
		return nil, err
	}
	podCommand, err := PodCommand(BuilderPodYAML)
	if err != nil {
		return nil, err
	}
	if revision == "" {
		revision = "unknown"
	}
	return &Builder{
		Set: map[string]string{
			"dist":       "file://" + dist,
			"version":    strings.TrimPrefix(version, "v"),
			"base.image": baseImage,
		},
		Pod: builderPodScript,
		PodRun: builder.PodRunOptions{
			User: "0:0", Privileged: true, EmptyDir: "/var/lib/containers", Network: "host",
			Mounts: []string{busybox + ":/workspace/busybox:ro"},
			Env:    []string{"REVISION=" + revision, "DEBIAN_ARCHIVE=" + archive, "POD_COMMAND=" + strings.Join(podCommand, "\n")},
		},
		Revision: revision, Archive: archive,
		StandIns: []StandIn{
			{What: "docker.io/library/debian:bookworm-slim, the builder image's base", Instead: baseImage + ", the demo's debootstrap base",
				Why: "Docker Hub is not reachable here; make dist's binary needs only glibc 2.34 or later, which both have"},
			{What: "the builder image as a Kubernetes pod (images/agentforge/pod.yaml: privileged, root, an emptyDir at /var/lib/containers)",
				Instead: "podman with runc: --privileged --user 0:0, a fresh folder at /var/lib/containers, the host's network, testdata/busybox mounted read-only as the workspace",
				Why:     "no Kubernetes cluster here; these are the flags measured to behave as a pod does"},
		},
	}, nil
}

// PodBuild is the build the pod ran, from its BUILD-RESULT line.
type PodBuild struct {
	ID      string  `json:"id"`
	Digest  string  `json:"digest"`
	Seconds float64 `json:"seconds"`
}

// ParsePodBuild finds the BUILD-RESULT line in the pod's output.
func ParsePodBuild(out string) (*PodBuild, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), "BUILD-RESULT "); ok {
			var b PodBuild
			if err := json.Unmarshal([]byte(js), &b); err != nil {
				return nil, fmt.Errorf("the pod's build result: %w", err)
			}
			if !strings.HasPrefix(b.Digest, "sha256:") {
				return nil, fmt.Errorf("the pod's build result names no digest: %s", js)
			}
			return &b, nil
		}
	}
	return nil, fmt.Errorf("the pod printed no build result")
}

// PodYAML is the pod YAML file with the agentforge container's image set
// to image (the builder image as published, pinned by digest).
func PodYAML(file, image string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	out, err := jenkins.SetContainerImage(string(data), BuilderContainer, image)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// PodCommand is what the agentforge container of the pod YAML file runs
// as PID 1: its command, then its args. The pod check starts it as PID 1
// of a PID namespace and makes it adopt a process, as a step does.
func PodCommand(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pod struct {
		Spec struct {
			Containers []struct {
				Name          string
				Command, Args []string
			}
		}
	}
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, c := range pod.Spec.Containers {
		if c.Name != BuilderContainer {
			continue
		}
		words := append(c.Command, c.Args...)
		if len(words) == 0 || slices.ContainsFunc(words, func(w string) bool { return w == "" || strings.Contains(w, "\n") }) {
			return nil, fmt.Errorf("%s: container %s: want a command (the image's entrypoint is agentforge itself), words without line breaks: %q", file, c.Name, words)
		}
		return words, nil
	}
	return nil, fmt.Errorf("%s: no container named %s", file, BuilderContainer)
}
