package registry

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Close closes at once a connection that never began a request (a
// client's transport dials one more than it uses): net/http's Shutdown
// alone would wait for it until its deadline and return
// context.DeadlineExceeded.
func TestServer_CloseDropsConnectionsThatNeverBeganARequest(t *testing.T) {
	s, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idle, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(50 * time.Millisecond) // accepted, and tracked as new
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v, want the server stopped before its deadline", err)
	}
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the connection that never began a request: read %d, %v; want it closed", n, err)
	}
	if err := s.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}
