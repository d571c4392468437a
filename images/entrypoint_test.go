package images_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stub records how it was run: its path, then every argument, one a line,
// an argument naming an open descriptor (@/dev/fd/N, which remoting reads
// as a file of arguments) as "@fd:" and what the descriptor holds; and its
// environment.
const stub = `#!/bin/sh
for a in "$0" "$@"; do
	case "$a" in
	@/dev/fd/*) printf '@fd:%s\n' "$(cat "${a#@}")" ;;
	*) printf '%s\n' "$a" ;;
	esac
done > "$ARGV_FILE"
env > "$ARGV_FILE.env"
`

// TestEntrypoint runs python-agent's jenkins-agent with stand-ins for java
// and checks the exact command line it starts, for the environment the
// Kubernetes plugin sets and the argument forms its templates use. $T in
// the expectations is the test's temporary directory.
func TestEntrypoint(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	script, err := filepath.Abs("python-agent/jenkins-agent")
	if err != nil {
		t.Fatal(err)
	}
	const jar = "/usr/share/jenkins/agent.jar"
	// What the Kubernetes plugin sets for an inbound agent.
	plugin := map[string]string{
		"JENKINS_URL":           "http://jenkins.ci:8080/",
		"JENKINS_SECRET":        "0123abcd",
		"JENKINS_AGENT_NAME":    "python-abc12",
		"JENKINS_NAME":          "python-abc12",
		"JENKINS_AGENT_WORKDIR": "/home/jenkins/agent",
	}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range plugin {
			env[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		return env
	}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{
			name: "environment only",
			env:  plugin,
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "positional secret and name",
			env:  plugin,
			args: []string{"0123abcd", "python-abc12"},
			want: []string{"$T/bin/java", "-jar", jar, "-url", "http://jenkins.ci:8080/",
				"-workDir", "/home/jenkins/agent", "0123abcd", "python-abc12"},
		},
		{
			name: "positional secret and name differ from the environment",
			env:  plugin,
			args: []string{"feedbeef", "other-agent"},
			want: []string{"$T/bin/java", "-jar", jar, "-url", "http://jenkins.ci:8080/",
				"-workDir", "/home/jenkins/agent", "feedbeef", "other-agent"},
		},
		{
			name: "named secret and name in the arguments",
			env:  plugin,
			args: []string{"-secret", "feedbeef", "-name", "other-agent"},
			want: []string{"$T/bin/java", "-jar", jar, "-url", "http://jenkins.ci:8080/",
				"-workDir", "/home/jenkins/agent", "-secret", "feedbeef", "-name", "other-agent"},
		},
		{
			name: "workDir in the arguments",
			env:  plugin,
			args: []string{"-workDir", "/tmp/work"},
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/tmp/work"},
		},
		{
			name: "no workDir without JENKINS_AGENT_WORKDIR",
			env:  with(map[string]string{"JENKINS_AGENT_WORKDIR": ""}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/"},
		},
		{
			name: "web socket",
			env:  with(map[string]string{"JENKINS_WEB_SOCKET": "true"}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent", "-webSocket"},
		},
		{
			name: "web socket false",
			env:  with(map[string]string{"JENKINS_WEB_SOCKET": "false"}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "direct connection",
			env: with(map[string]string{
				"JENKINS_URL":               "",
				"JENKINS_DIRECT_CONNECTION": "jenkins-agent.ci:50000",
				"JENKINS_INSTANCE_IDENTITY": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
				"JENKINS_PROTOCOLS":         "JNLP4-connect",
			}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-workDir", "/home/jenkins/agent", "-direct", "jenkins-agent.ci:50000",
				"-protocols", "JNLP4-connect", "-instanceIdentity", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"},
		},
		{
			name: "tunnel",
			env:  with(map[string]string{"JENKINS_TUNNEL": "jenkins-agent.ci:50000"}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-tunnel", "jenkins-agent.ci:50000", "-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "secret from a file",
			env:  with(map[string]string{"JENKINS_SECRET": "@/run/secrets/agent-secret"}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@/run/secrets/agent-secret", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "legacy JENKINS_NAME wins",
			env:  with(map[string]string{"JENKINS_AGENT_NAME": "new-name", "JENKINS_NAME": "legacy-name"}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "legacy-name",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "JAVA_HOME",
			env:  with(map[string]string{"JAVA_HOME": "$T/jdk"}),
			want: []string{"$T/jdk/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "JENKINS_JAVA_BIN over JAVA_HOME",
			env:  with(map[string]string{"JAVA_HOME": "$T/jdk", "JENKINS_JAVA_BIN": "$T/bin/java"}),
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "JAVA_OPTS split into words",
			env:  with(map[string]string{"JAVA_OPTS": "-Xmx512m  -Dfile.encoding=UTF-8 -Dx=*"}),
			want: []string{"$T/bin/java", "-Xmx512m", "-Dfile.encoding=UTF-8", "-Dx=*", "-jar", jar,
				"-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "JENKINS_JAVA_OPTS over JAVA_OPTS",
			env:  with(map[string]string{"JAVA_OPTS": "-Xmx512m", "JENKINS_JAVA_OPTS": "-Xmx1g -XX:+UseSerialGC"}),
			want: []string{"$T/bin/java", "-Xmx1g", "-XX:+UseSerialGC", "-jar", jar,
				"-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "REMOTING_OPTS with quoted words",
			env: with(map[string]string{
				"REMOTING_OPTS": `-jar-cache "/tmp/jar cache" -noReconnectAfter '1 d' -loggingConfig /etc/*.properties`,
			}),
			args: []string{"-noKeepAlive"},
			want: []string{"$T/bin/java", "-jar", jar, "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent",
				"-jar-cache", "/tmp/jar cache", "-noReconnectAfter", "1 d", "-loggingConfig", "/etc/*.properties",
				"-noKeepAlive"},
		},
		{
			name: "agent file",
			env:  with(map[string]string{"JENKINS_AGENT_FILE": "/opt/remoting.jar"}),
			want: []string{"$T/bin/java", "-jar", "/opt/remoting.jar", "-secret", "@fd:0123abcd", "-name", "python-abc12",
				"-url", "http://jenkins.ci:8080/", "-workDir", "/home/jenkins/agent"},
		},
		{
			name: "no environment, options as arguments",
			env:  map[string]string{},
			args: []string{"-url", "http://jenkins.ci:8080/", "-secret", "0123abcd", "-name", "a b"},
			want: []string{"$T/bin/java", "-jar", jar, "-url", "http://jenkins.ci:8080/", "-secret", "0123abcd", "-name", "a b"},
		},
		{
			name: "one option runs the agent",
			env:  map[string]string{},
			args: []string{"-help"},
			want: []string{"$T/bin/java", "-jar", jar, "-help"},
		},
		{
			name: "a command",
			env:  plugin,
			args: []string{"mycmd"},
			want: []string{"$T/bin/mycmd"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range []string{"bin/java", "bin/mycmd", "jdk/bin/java"} {
				p = filepath.Join(dir, p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(stub), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			argvFile := filepath.Join(dir, "argv")
			cmd := exec.Command(bash, append([]string{script}, tt.args...)...)
			cmd.Dir = dir
			cmd.Env = []string{
				"PATH=" + filepath.Join(dir, "bin") + ":/usr/bin:/bin",
				"ARGV_FILE=" + argvFile,
			}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+strings.ReplaceAll(v, "$T", dir))
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("jenkins-agent: %v\n%s", err, out)
			}
			data, err := os.ReadFile(argvFile)
			if err != nil {
				t.Fatalf("java was not run: %v\n%s", err, out)
			}
			got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "$T", dir)
			}
			if !slices.Equal(got, want) {
				t.Errorf("argv\n got %q\nwant %q\nstderr: %s", got, want, out)
			}
			if secret := tt.env["JENKINS_SECRET"]; secret != "" && strings.Contains(string(out), secret) {
				t.Errorf("the secret reached the output: %s", out)
			}
			env, err := os.ReadFile(argvFile + ".env")
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(want[0], "/java") && strings.Contains(string(env), "JENKINS_SECRET=") {
				t.Errorf("JENKINS_SECRET is in the agent's environment, which every build step inherits")
			}
		})
	}
}
