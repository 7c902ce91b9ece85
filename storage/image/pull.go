package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PullOptions adjust a Pull.
type PullOptions struct {
	// Insecure allows plain HTTP, and only to a registry on the loopback
	// interface ("localhost", 127.0.0.0/8, ::1): it is refused for any
	// other host before anything is sent.
	Insecure bool
	// Progress receives a progress bar if it is a terminal.
	Progress io.Writer
	// Transport carries the requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
}

// Pull fetches ref ("alpine", "registry.example/app:1.2",
// "repo@sha256:…") from its registry and stores it; for a multi-platform
// image, the linux image for this machine's architecture. Credentials come
// from the Docker config (~/.docker/config.json and its helpers). Every
// blob is checked against its digest while it is read.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	fail := func(err error) error {
		var le *LayerError
		if errors.As(err, &le) {
			return err
		}
		return fmt.Errorf("image pull %s: %w", ref, err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fail(err)
	}
	host := r.Context().RegistryStr()
	if opts.Insecure {
		if !isLoopback(host) {
			return nil, fail(fmt.Errorf("%w: %s is not a loopback host", ErrInsecure, host))
		}
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, fail(err)
		}
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt := &httpGuard{base: base, allowHTTP: opts.Insecure}
	img, err := remote.Image(r,
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(hostPlatform()),
	)
	if err != nil {
		return nil, fail(err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fail(err)
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fail(err)
	}
	var tags []string
	if t, ok := r.(name.Tag); ok {
		if n, err := NormalizeTag(t.String()); err == nil {
			tags = []string{n}
		}
	}
	c, err := manifestCandidate(describe(ref, nil), digest, rawManifest,
		func(v1.Hash) ([]byte, error) { return img.RawConfigFile() },
		func(h v1.Hash) (io.ReadCloser, error) {
			l, err := img.LayerByDigest(h)
			if err != nil {
				return nil, err
			}
			return l.Compressed()
		})
	if err != nil {
		return nil, fail(err)
	}
	c.tags = tags
	imgs, err := s.store(ctx, "pull", "pull "+ref, []*candidate{c}, opts.Progress)
	if err != nil {
		return nil, fail(err)
	}
	return imgs[0], nil
}

// isLoopback reports whether a registry host ("host[:port]") is on the
// loopback interface. Names other than "localhost" are not resolved: what
// a name resolves to is not the user's promise.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpGuard refuses a plain-HTTP request unless Insecure was given and
// the host is loopback. go-containerregistry would otherwise fall back to
// HTTP on its own for private (RFC 1918) addresses and *.local names, and
// a registry could redirect a blob to any http:// URL; every request,
// redirects included, passes through here.
type httpGuard struct {
	base      http.RoundTripper
	allowHTTP bool
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !(g.allowHTTP && req.URL.Scheme == "http" && isLoopback(req.URL.Host)) {
		return nil, fmt.Errorf("%w: refusing %s", ErrInsecure, req.URL.Redacted())
	}
	return g.base.RoundTrip(req)
}
