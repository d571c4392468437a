package httpget

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("0123456789"))
		case "/gone":
			http.NotFound(w, r)
		default:
			http.Error(w, "boom", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1)
	file := filepath.Join(t.TempDir(), "doc")
	os.WriteFile(file, []byte("0123456789"), 0o644)
	for _, tc := range []struct {
		name   string
		url    string
		limit  int64
		want   string
		status int
		large  bool
	}{
		{"ok", srv.URL + "/ok", 10, "0123456789", 0, false},
		{"too large", srv.URL + "/ok", 9, "", 0, true},
		{"not found", withCreds + "/gone", 10, "", 404, false},
		{"server error", srv.URL + "/x", 10, "", 502, false},
		{"file", "file://" + file, 10, "0123456789", 0, false},
		{"file too large", "file://" + file, 4, "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Get(context.Background(), nil, tc.url, tc.limit)
			var se *StatusError
			switch {
			case tc.status != 0:
				if !errors.As(err, &se) || se.StatusCode != tc.status {
					t.Fatalf("want status %d, got %v", tc.status, err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("credentials in %q", err)
				}
			case tc.large:
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("want ErrTooLarge, got %v", err)
				}
			case err != nil || string(got) != tc.want:
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
	if ok, err := Exists(context.Background(), nil, srv.URL+"/gone"); ok || err != nil {
		t.Errorf("Exists(404) = %v, %v", ok, err)
	}
	if _, err := Get(context.Background(), nil, "http://user:s3cret@127.0.0.1:1/x", 10); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("connection error %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for _, u := range []string{"https://user:s3cret@mirror.example/python/", "https://:s3cret@mirror.example/"} {
		if got := RedactURL(u); strings.Contains(got, "s3cret") {
			t.Errorf("secret in %q", got)
		}
	}
}
