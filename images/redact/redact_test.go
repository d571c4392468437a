package redact

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentforge/agentforge/images/errs"
)

func TestSet_String(t *testing.T) {
	s := New()
	s.AddBasic("ci-bot", "pa/ss+w0rd&more")
	b64 := base64.StdEncoding.EncodeToString([]byte("ci-bot:pa/ss+w0rd&more"))
	for _, tc := range []struct{ name, in, leak string }{
		{"as is", "token pa/ss+w0rd&more here", "pa/ss+w0rd&more"},
		{"url-encoded", "q=pa%2Fss%2Bw0rd%26more", "pa%2Fss%2Bw0rd%26more"},
		{"escaped slashes", `{"p":"pa\/ss+w0rd&more"}`, `pa\/ss`},
		{"JSON with HTML escaping", `{"p":"pa/ss+w0rd\u0026more"}`, `w0rd\u0026more`},
		{"basic header", "Authorization: Basic " + b64, b64},
		{"user:password", "ci-bot:pa/ss+w0rd&more", "pa/ss"},
		{"cut with ...", `StatusCode: 400, "Authorization: Basic ` + b64[:20] + `..."`, b64[:20]},
		{"cut with …", "Authorization: Basic " + b64[:14] + "…", b64[:14]},
		{"cut at the end", "Authorization: Basic " + b64[:16], b64[:16]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := s.String(tc.in)
			if strings.Contains(got, tc.leak) || !strings.Contains(got, Mask) {
				t.Errorf("String(%q) = %q: still shows %q", tc.in, got, tc.leak)
			}
		})
	}
	// Short prefixes and the user name alone are not secrets.
	if got := s.String("user ci-bot, word pa/ss"); got != "user ci-bot, word pa/ss" {
		t.Errorf("String masked what is not a secret: %q", got)
	}
}

func TestSet_AddHeaderAndTransport(t *testing.T) {
	var seen string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("Authorization")
		fmt.Fprintf(w, "echo %s crumb=%s cookie=%s", seen, r.Header.Get("Jenkins-Crumb"), r.Header.Get("Cookie"))
	}))
	defer srv.Close()
	s := New()
	c := &http.Client{Transport: &Transport{Secrets: s}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.payload.sig")
	req.Header.Set("Jenkins-Crumb", "0123456789abcdef")
	req.Header.Set("Cookie", "JSESSIONID.1=node0abcdefgh; Path=/")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprint(&b, resp.Header, resp.Status)
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	got := s.String(string(body[:n]))
	for _, leak := range []string{"eyJhbGciOiJFUzI1NiJ9", "0123456789abcdef", "node0abcdefgh"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q still shows %q", got, leak)
		}
	}
	if !strings.Contains(got, "Path=/") {
		t.Errorf("a cookie attribute was masked: %q", got)
	}
}

func TestSet_ErrorKeepsKinds(t *testing.T) {
	s := New()
	s.Add("hunter2-password", 1)
	base := errs.Inputf("login with hunter2-password failed")
	err := s.Error(fmt.Errorf("publish: %w", base))
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the secret: %v", err)
	}
	if !errors.Is(err, errs.ErrInput) {
		t.Errorf("the error lost its kind: %v", err)
	}
	clean := errors.New("nothing secret")
	if s.Error(clean) != clean {
		t.Error("an error without secrets was wrapped")
	}
	var none *Set
	if none.String("x") != "x" || none.Error(clean) != clean {
		t.Error("a nil set changed its input")
	}
}
