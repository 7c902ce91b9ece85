//go:build linux

package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry serves go-containerregistry's in-memory registry on
// 127.0.0.1 over plain HTTP; wrap may intercept requests.
func testRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u.Host
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestPull(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	host := testRegistry(t, nil)
	img := twoLayerImage(t, compression.GZip)
	push(t, host+"/test/app:1", img)
	s := openStore(t)

	got, err := s.Pull(ctx, host+"/test/app:1", PullOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, got, host+"/test/app:1")
	d, _ := img.Digest()
	if got.Digest != d.String() {
		t.Errorf("digest %s, want %s", got.Digest, d)
	}

	// By digest, through "localhost": no tag, same image, layers shared.
	port := host[strings.LastIndex(host, ":"):]
	byDigest, err := s.Pull(ctx, "localhost"+port+"/test/app@"+d.String(), PullOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if byDigest.ID != got.ID {
		t.Errorf("pull by digest stored %s, want %s", byDigest.ID, got.ID)
	}

	// Without Insecure, plain HTTP is refused even on loopback.
	if _, err := s.Pull(ctx, host+"/test/app:1", PullOptions{}); !errors.Is(err, ErrInsecure) {
		t.Errorf("pull without Insecure = %v", err)
	}
}

func TestPullMultiPlatform(t *testing.T) {
	requireRoot(t)
	host := testRegistry(t, nil)
	other := buildImage(t, v1.Config{Cmd: []string{"other"}}, gzLayer(t, mkTar(t, ent{name: "x"})))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: twoLayerImage(t, compression.ZStd), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	r, _ := name.ParseReference(host+"/multi:1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	got, err := s.Pull(context.Background(), host+"/multi:1", PullOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, s, got, host+"/multi:1")
}

// recorder is a transport that fails the test if it is used at all, or
// records where requests went.
type recorder struct {
	mu   sync.Mutex
	urls []string
	base http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	if r.base == nil {
		return nil, fmt.Errorf("no request may be sent, got %s", req.URL)
	}
	return r.base.RoundTrip(req)
}

func TestPullInsecureOnlyForLoopback(t *testing.T) {
	s := openStore(t)
	for _, ref := range []string{
		"registry.example.com/app:1",
		"10.1.2.3:5000/app:1",
		"192.168.1.10/app:1",
		"printer.local/app:1",
		"localhost.example.com/app:1",
		"[fe80::1]:5000/app:1",
	} {
		rec := &recorder{}
		_, err := s.Pull(context.Background(), ref, PullOptions{Insecure: true, Transport: rec})
		if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "image pull "+ref) {
			t.Errorf("Pull(%s, Insecure) = %v", ref, err)
		}
		if len(rec.urls) != 0 {
			t.Errorf("Pull(%s) sent %v", ref, rec.urls)
		}
	}
	// Without Insecure, go-containerregistry would fall back to plain HTTP
	// for a private address on its own; nothing but HTTPS leaves.
	rec := &recorder{}
	if _, err := s.Pull(context.Background(), "10.1.2.3:5000/app:1", PullOptions{Transport: rec}); err == nil {
		t.Error("pull from an unreachable registry succeeded")
	}
	if len(rec.urls) == 0 {
		t.Error("no HTTPS request was tried")
	}
	for _, u := range rec.urls {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("sent %s", u)
		}
	}
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1": true, "127.3.4.5:80": true, "[::1]:5000": true, "LOCALHOST": true,
		"10.0.0.1": false, "example.com": false, "localhost.evil.com": false, "[::2]:5000": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}

// A registry may redirect a blob to any URL: plain HTTP is refused before
// anything is sent there.
func TestPullRefusesPlainHTTPRedirect(t *testing.T) {
	host := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
				http.Redirect(w, r, "http://example.com/blob", http.StatusTemporaryRedirect)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	push(t, host+"/test/app:1", plainTwoLayers(t))
	rec := &recorder{base: http.DefaultTransport}
	s := openStore(t)
	_, err := s.Pull(context.Background(), host+"/test/app:1", PullOptions{Insecure: true, Transport: rec})
	if !errors.Is(err, ErrInsecure) {
		t.Fatalf("pull = %v", err)
	}
	for _, u := range rec.urls {
		if strings.Contains(u, "example.com") {
			t.Errorf("request sent to %s", u)
		}
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Errorf("stored %v", l)
	}
	if es := dirEntries(t, s.tmpDir()); len(es) != 0 {
		t.Errorf("tmp/ holds %v", es)
	}
}
