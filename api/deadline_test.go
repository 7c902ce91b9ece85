package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveUnix serves s on a unix socket as the daemon does, every peer
// taken for root, and returns the socket's path.
func serveUnix(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oak.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context { return withPeer(ctx, peer{uid: 0}) }}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return path
}

// A client that sends its headers and then withholds the body gets 408
// once the server's BodyTimeout has passed, and its connection is not
// held for ever; a client that sends its body in time is served, and its
// connection may then idle past the timeout and be used again.
func TestSlowBodyTimesOut(t *testing.T) {
	s, _ := newTestServer(t)
	s.BodyTimeout = 200 * time.Millisecond
	path := serveUnix(t, s)

	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"Image":"demo"}`
	start := time.Now()
	// Headers and the first byte only.
	if _, err := c.Write([]byte("POST /v1/containers HTTP/1.1\r\nHost: oak\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body[:1])); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a withheld body: %v", err)
	}
	var eb ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != http.StatusRequestTimeout || eb.Code != CodeTimeout {
		t.Errorf("withheld body: %d %+v, want 408 %s", resp.StatusCode, eb, CodeTimeout)
	}
	if d := time.Since(start); d < s.BodyTimeout {
		t.Errorf("answered after %v, before the body timeout %v", d, s.BodyTimeout)
	}

	// In time, on one kept-alive connection, twice, idling past the timeout between.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}, MaxConnsPerHost: 1}}
	for i := range 2 {
		resp, err := hc.Post("http://oak/v1/containers", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d in time: status %d", i, resp.StatusCode)
		}
		time.Sleep(2 * s.BodyTimeout)
	}
}
