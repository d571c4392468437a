package jenkins

import (
	"strings"
	"testing"
)

// A page's inline style sheet, script and comments are markup, not text:
// a proxy's or Jenkins' own "getting ready" page starts with them, and the
// few hundred characters quoted would be CSS and JavaScript only.
func TestPageText_SkipsStyleScriptAndComments(t *testing.T) {
	page := "<!DOCTYPE html><html><head><title>Starting</title>" +
		"<STYLE type=\"text/css\">body { font-family: sans-serif; } " + strings.Repeat(".x{color:red}", 30) + "</style>" +
		"<script>if (a > b) { reload(); } " + strings.Repeat("var x = 1;", 30) + "</script>" +
		"<!-- a > b, <b>not shown</b> -->" +
		"</head><body><p>Please wait while Jenkins is getting ready</p></body></html>"
	got := pageText(page, 200)
	for _, bad := range []string{"font-family", "reload", "var x", "not shown", "color:red"} {
		if strings.Contains(got, bad) {
			t.Errorf("pageText = %q: it quotes %q", got, bad)
		}
	}
	if !strings.Contains(got, "Please wait while Jenkins is getting ready") || !strings.Contains(got, "Starting") {
		t.Errorf("pageText = %q: want the title and the body's text", got)
	}
}
