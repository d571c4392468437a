package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// The embedded registry's lines about its clients' errors (a 404 for a
// blob a push checks first) are dropped; its server errors and every
// other line stay.
func TestClientErrorFilter(t *testing.T) {
	for _, tc := range []struct {
		name string
		data logrus.Fields
		kept bool
	}{
		{"a 404 for a blob", logrus.Fields{"http.response.status": 404, "err.code": "blob unknown"}, false},
		{"a 401 before credentials", logrus.Fields{"http.response.status": 401}, false},
		{"a 500", logrus.Fields{"http.response.status": 500}, true},
		{"a status logged as text", logrus.Fields{"http.response.status": "503"}, true},
		{"c/image's warning", logrus.Fields{"source": "c/image"}, true},
	} {
		var buf bytes.Buffer
		l := logrus.New()
		l.Out, l.Formatter = &buf, clientErrorFilter{&logrus.TextFormatter{DisableColors: true}}
		l.WithFields(tc.data).Error("response completed with error")
		if kept := buf.Len() > 0; kept != tc.kept {
			t.Errorf("%s: kept %v, want %v (%q)", tc.name, kept, tc.kept, buf.String())
		}
	}
}

// With --log-format json every line on stderr is a JSON object, the
// failure's own included (the Jenkinsfile runs agentforge so).
func TestCLI_JSONLogsIncludeTheFailure(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "--log-format", "json"},
		{"verify", "oci:" + filepath.Join(t.TempDir(), "none"), "--log-format", "json"},
		{"verify", "oci:" + filepath.Join(t.TempDir(), "none"), "--log-format=json", "-o", "json"},
		{"--log-format", "json", "-o", "yaml", "version"},
		// Usage errors cobra meets before it parses --log-format.
		{"nosuch", "--log-format", "json"},
		{"--log-format=json", "nosuch"},
		{"version", "--bogus", "--log-format", "json"},
	} {
		code, _, stderr := cli(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		var failure bool
		for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
			var v struct {
				Level    string `json:"level"`
				Msg      string `json:"msg"`
				ExitCode int    `json:"exitCode"`
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Errorf("%v: a line on stderr is not JSON (%v): %s", args, err, line)
				continue
			}
			failure = failure || (v.Level == "error" && v.Msg != "" && v.ExitCode == 2)
		}
		if !failure {
			t.Errorf("%v: no JSON line reports the failure:\n%s", args, stderr)
		}
	}
}
