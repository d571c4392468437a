package main

import (
	"bytes"
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
