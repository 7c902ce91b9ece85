package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/oak-engine/oak/engine"
)

// Client talks to the daemon of one state root over its socket.
type Client struct {
	root  string
	dial  func() (net.Conn, error)
	http  *http.Client
	token string // sent as Authorization: Bearer, if set
}

// WithToken makes c present tok (a tenant's token) on every request: c
// then acts as that tenant, whoever runs it (see token.go).
func (c *Client) WithToken(tok string) *Client {
	c.token = tok
	return c
}

// authorize adds c's credential, if it has one beyond its peer's, to req.
func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// NewClient is a client of the daemon serving root, on its own socket
// for uid 0 and on the tenants' socket (TenantSocket) for anyone else. It
// does not connect until a request is made.
func NewClient(root string) *Client {
	sock := socketFor(root)
	return newClient(root, func() (net.Conn, error) { return dialUnix(sock) })
}

// newClient is a client that reaches the daemon with dial.
func newClient(root string, dial func() (net.Conn, error)) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial() },
		// One CLI verb makes a few requests; keep none open after it.
		MaxIdleConns: 1, IdleConnTimeout: time.Second,
	}
	return &Client{root: root, dial: dial, http: &http.Client{Transport: tr}}
}

// Ping reports whether a daemon answers on the socket and is ready.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, "GET", "/v1/ready", nil, nil, nil)
}

// do makes one request with body (JSON-encoded unless nil) and decodes a
// 2xx answer into out (unless nil); an error answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// send makes a request and returns the response if its status is 2xx.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytesReader(b)
	}
	u := "http://oak" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &ConnError{Root: c.root, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, errorAnswer(resp, method, path)
}

// errorAnswer is the *Error of a response that is not a success.
func errorAnswer(resp *http.Response, method, path string) error {
	var e ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		return &Error{Status: resp.StatusCode, Code: CodeInternal,
			Message: fmt.Sprintf("daemon: %s %s: %s", method, path, resp.Status)}
	}
	return &Error{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
}

// ConnError is a request that reached no daemon (or lost it).
type ConnError struct {
	Root string
	Err  error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("daemon of %s: %v", e.Root, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// Run creates and starts a container detached and returns its id.
func (c *Client) Run(ctx context.Context, o engine.RunOptions) (string, error) {
	var out Created
	err := c.do(ctx, "POST", "/v1/containers", nil, NewRunRequest(o), &out)
	return out.Id, err
}

// Containers lists containers, newest first: the running ones, or all;
// filters as oak ps --filter.
func (c *Client) Containers(ctx context.Context, all bool, filters []string) ([]*engine.ContainerInfo, error) {
	q := url.Values{"filter": filters}
	if all {
		q.Set("all", "1")
	}
	var out []*engine.ContainerInfo
	return out, c.do(ctx, "GET", "/v1/containers", q, nil, &out)
}

// Container describes one container.
func (c *Client) Container(ctx context.Context, ref string) (*engine.ContainerInfo, error) {
	var out engine.ContainerInfo
	if err := c.do(ctx, "GET", "/v1/containers/"+url.PathEscape(ref), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Remove removes a container; force kills a running one first.
func (c *Client) Remove(ctx context.Context, ref string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.do(ctx, "DELETE", "/v1/containers/"+url.PathEscape(ref), q, nil, nil)
}

// Start starts an exited container again.
func (c *Client) Start(ctx context.Context, ref string) error {
	return c.do(ctx, "POST", "/v1/containers/"+url.PathEscape(ref)+"/start", nil, nil, nil)
}

func stopQuery(sig syscall.Signal, timeout time.Duration) url.Values {
	q := url.Values{"t": {strconv.Itoa(int(timeout / time.Second))}}
	if sig != 0 {
		q.Set("signal", strconv.Itoa(int(sig)))
	}
	return q
}

// Stop stops a container (sig 0: its stop signal; SIGKILL after
// timeout) and returns its exit status.
func (c *Client) Stop(ctx context.Context, ref string, sig syscall.Signal, timeout time.Duration) (int, error) {
	var out ExitStatus
	err := c.do(ctx, "POST", "/v1/containers/"+url.PathEscape(ref)+"/stop", stopQuery(sig, timeout), nil, &out)
	return out.StatusCode, err
}

// Restart stops a container as Stop does and starts it again.
func (c *Client) Restart(ctx context.Context, ref string, sig syscall.Signal, timeout time.Duration) error {
	return c.do(ctx, "POST", "/v1/containers/"+url.PathEscape(ref)+"/restart", stopQuery(sig, timeout), nil, nil)
}

// Kill sends sig to a running container.
func (c *Client) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	q := url.Values{"signal": {strconv.Itoa(int(sig))}}
	return c.do(ctx, "POST", "/v1/containers/"+url.PathEscape(ref)+"/kill", q, nil, nil)
}

// Wait waits until a container is not running and returns its exit status.
func (c *Client) Wait(ctx context.Context, ref string) (int, error) {
	var out ExitStatus
	err := c.do(ctx, "POST", "/v1/containers/"+url.PathEscape(ref)+"/wait", nil, nil, &out)
	return out.StatusCode, err
}

// Logs copies a container's log to stdout and stderr, as engine.Logs does.
func (c *Client) Logs(ctx context.Context, ref string, o engine.LogsOptions, stdout, stderr io.Writer) error {
	q := url.Values{"tail": {strconv.Itoa(o.Tail)}}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Timestamps {
		q.Set("timestamps", "1")
	}
	if !o.Since.IsZero() {
		q.Set("since", strconv.FormatInt(o.Since.UnixNano(), 10))
	}
	resp, err := c.send(ctx, "GET", "/v1/containers/"+url.PathEscape(ref)+"/logs", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readFrames(resp.Body, stdout, stderr)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Grants lists the network grants a running container holds.
func (c *Client) Grants(ctx context.Context, ref string) ([]string, error) {
	var out []string
	return out, c.do(ctx, "GET", "/v1/containers/"+url.PathEscape(ref)+"/grants", nil, nil, &out)
}

// Revoke withdraws a grant from a running container.
func (c *Client) Revoke(ctx context.Context, ref, grant string) error {
	return c.do(ctx, "POST", "/v1/containers/"+url.PathEscape(ref)+"/revoke", nil, RevokeRequest{Grant: grant}, nil)
}

// Images lists the stored images.
func (c *Client) Images(ctx context.Context) ([]*engine.ImageInfo, error) {
	var out []*engine.ImageInfo
	return out, c.do(ctx, "GET", "/v1/images", nil, nil, &out)
}

// Volumes lists the volumes.
func (c *Client) Volumes(ctx context.Context) ([]*engine.VolumeInfo, error) {
	var out []*engine.VolumeInfo
	return out, c.do(ctx, "GET", "/v1/volumes", nil, nil, &out)
}

// CreateVolume creates a volume.
func (c *Client) CreateVolume(ctx context.Context, v VolumeCreate) (*engine.VolumeInfo, error) {
	var out engine.VolumeInfo
	if err := c.do(ctx, "POST", "/v1/volumes", nil, v, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveVolume removes a volume.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/volumes/"+url.PathEscape(name), nil, nil, nil)
}

// Volume describes one volume.
func (c *Client) Volume(ctx context.Context, name string) (*engine.VolumeInfo, error) {
	var out engine.VolumeInfo
	if err := c.do(ctx, "GET", "/v1/volumes/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Image describes one stored image.
func (c *Client) Image(ctx context.Context, ref string) (*engine.ImageInfo, error) {
	var out engine.ImageInfo
	if err := c.do(ctx, "GET", "/v1/images/"+url.PathEscape(ref), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveImage removes a stored image.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", "/v1/images/"+url.PathEscape(ref), nil, nil, nil)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
