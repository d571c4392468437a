package publisher

import (
	"context"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/publisher/registrytest"
)

func TestRewrite_Files(t *testing.T) {
	r := &Rewriter{Mirrors: []remote.Mirror{
		{From: "docker.io", To: "mirror.example/docker.io"},
		{From: "quay.io", To: "mirror.example/quay.io"},
	}}
	cases := []struct {
		name, in, want string
		unmirrored     []string
	}{
		{"Containerfile", "FROM ubuntu:24.04 AS build\nFROM --platform=linux/amd64 build\nCOPY --from=quay.io/podman/stable:v5 /usr/bin/podman /usr/bin/\nFROM scratch\nFROM ${BASE_IMAGE}\nFROM ghcr.io/owner/tool:1\n",
			"FROM mirror.example/docker.io/library/ubuntu:24.04 AS build\nFROM --platform=linux/amd64 build\nCOPY --from=mirror.example/quay.io/podman/stable:v5 /usr/bin/podman /usr/bin/\nFROM scratch\nFROM ${BASE_IMAGE}\nFROM ghcr.io/owner/tool:1\n",
			[]string{"ghcr.io/owner/tool:1"}},
		{"Kubernetes YAML", "spec:\n  containers:\n    - name: jnlp\n      image: \"jenkins/inbound-agent:3355.v388858a_47b_33-1-jdk21\"\n    - image: mirror.example/docker.io/library/python:3.11 # already mirrored\n",
			"spec:\n  containers:\n    - name: jnlp\n      image: \"mirror.example/docker.io/jenkins/inbound-agent:3355.v388858a_47b_33-1-jdk21\"\n    - image: mirror.example/docker.io/library/python:3.11 # already mirrored\n",
			nil},
		{"Jenkinsfile", "pipeline {\n  agent { docker { image 'maven:3.9-eclipse-temurin-17' } }\n  stages { stage('x') { steps { script { docker.image(\"node:20\").inside { sh 'true' } } } } }\n}\npodTemplate(containers: [containerTemplate(name: 'py', image: 'python:3.11')])\n",
			"pipeline {\n  agent { docker { image 'mirror.example/docker.io/library/maven:3.9-eclipse-temurin-17' } }\n  stages { stage('x') { steps { script { docker.image(\"mirror.example/docker.io/library/node:20\").inside { sh 'true' } } } } }\n}\npodTemplate(containers: [containerTemplate(name: 'py', image: 'mirror.example/docker.io/library/python:3.11')])\n",
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, changes, err := r.Rewrite(context.Background(), "f", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", out, tc.want)
			}
			var unmirrored []string
			for _, c := range changes {
				if c.To == "" {
					unmirrored = append(unmirrored, c.From)
				}
			}
			if strings.Join(unmirrored, ",") != strings.Join(tc.unmirrored, ",") {
				t.Errorf("unmirrored %v, want %v", unmirrored, tc.unmirrored)
			}
		})
	}
}

func TestRewrite_PinsDigestFromTheMirror(t *testing.T) {
	img := buildLocal(t, "hello")
	mirror := registrytest.New(t, registrytest.Options{})
	regs := remote.Registries{Insecure: []string{mirror.Host}}
	rep, err := Publish(context.Background(), img.ref, []Destination{dest(t, mirror.Host+"/docker.io/library/busybox:1.36")}, Options{Hosts: registrytest.Open(t, regs), WorkDir: t.TempDir(), Verify: VerifyNone})
	if err != nil {
		t.Fatal(err)
	}
	r := &Rewriter{Mirrors: []remote.Mirror{{From: "docker.io", To: mirror.Host + "/docker.io"}}, Pin: true, Hosts: registrytest.Open(t, regs)}
	out, _, err := r.Rewrite(context.Background(), "Containerfile", []byte("FROM busybox:1.36\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "FROM " + mirror.Host + "/docker.io/library/busybox:1.36@" + rep.Digest + "\n"; string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	if _, _, err := r.Rewrite(context.Background(), "Containerfile", []byte("FROM busybox:missing\n")); err == nil || !strings.Contains(err.Error(), "Containerfile:1") {
		t.Fatalf("a tag the mirror lacks: %v", err)
	}
}

// A mirror's prefix may name a repository, not only a registry, as
// registries.conf prefixes do for pulls (c/image's refMatchingPrefix ends
// a prefix at "/", ":" or "@"): a tagged or pinned reference to it is
// rewritten, and the longest prefix wins, as it does for pulls.
func TestRewrite_RepositoryPrefix(t *testing.T) {
	r := &Rewriter{Mirrors: []remote.Mirror{
		{From: "docker.io", To: "mirror.example/docker.io"},
		{From: "docker.io/library/ubuntu", To: "ubuntu.mirror.example/ubuntu"},
		{From: "quay.io/podman", To: "mirror.example/podman"},
	}}
	in := "FROM ubuntu:24.04\nFROM ubuntu@sha256:" + strings.Repeat("a", 64) + "\nFROM ubuntu-debootstrap:14.04\nFROM quay.io/podman/stable:v5\nFROM quay.io/podmanx/tool:1\nFROM ubuntu.mirror.example/ubuntu:22.04\n"
	want := "FROM ubuntu.mirror.example/ubuntu:24.04\nFROM ubuntu.mirror.example/ubuntu@sha256:" + strings.Repeat("a", 64) + "\nFROM mirror.example/docker.io/library/ubuntu-debootstrap:14.04\nFROM mirror.example/podman/stable:v5\nFROM quay.io/podmanx/tool:1\nFROM ubuntu.mirror.example/ubuntu:22.04\n"
	out, changes, err := r.Rewrite(context.Background(), "Containerfile", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	var unmirrored []string
	for _, c := range changes {
		if c.To == "" {
			unmirrored = append(unmirrored, c.From)
		}
	}
	if strings.Join(unmirrored, ",") != "quay.io/podmanx/tool:1" {
		t.Errorf("unmirrored %v, want only quay.io/podmanx/tool:1", unmirrored)
	}
}

// A prefix may also name one tag (registries.conf's prefixes may: c/image's
// refMatchingPrefix compares the whole reference and ends a prefix at "/",
// ":" or "@"), as it could before prefixes were matched by repository:
// that tag, pinned or not, is rewritten, and another tag is not.
func TestRewrite_TagPrefix(t *testing.T) {
	r := &Rewriter{Mirrors: []remote.Mirror{{From: "docker.io/library/ubuntu:24.04", To: "mirror.example/ubuntu:24.04"}}}
	pin := "@sha256:" + strings.Repeat("a", 64)
	in := "FROM ubuntu:24.04\nFROM ubuntu:24.04" + pin + "\nFROM ubuntu:22.04\nFROM ubuntu:24.040\n"
	want := "FROM mirror.example/ubuntu:24.04\nFROM mirror.example/ubuntu:24.04" + pin + "\nFROM ubuntu:22.04\nFROM ubuntu:24.040\n"
	out, _, err := r.Rewrite(context.Background(), "Containerfile", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}
