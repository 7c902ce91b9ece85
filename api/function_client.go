package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/oak-engine/oak/engine"
)

// CreateFunction makes a function.
func (c *Client) CreateFunction(ctx context.Context, req FunctionCreate) (*engine.FunctionInfo, error) {
	var out engine.FunctionInfo
	if err := c.do(ctx, "POST", "/v1/functions", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Functions lists the functions, by name.
func (c *Client) Functions(ctx context.Context) ([]*engine.FunctionInfo, error) {
	var out []*engine.FunctionInfo
	err := c.do(ctx, "GET", "/v1/functions", nil, nil, &out)
	return out, err
}

// Function describes function name.
func (c *Client) Function(ctx context.Context, name string) (*engine.FunctionInfo, error) {
	var out engine.FunctionInfo
	if err := c.do(ctx, "GET", "/v1/functions/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveFunction removes function name, its factory and any invocation
// still running.
func (c *Client) RemoveFunction(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/functions/"+url.PathEscape(name), nil, nil, nil)
}

// Invoke runs one invocation of function name with stdin as its input
// (streamed to the daemon as it is read; at most MaxInvokeBody bytes),
// copies its stdout and stderr to stdout and stderr as the command writes
// them, all of them (the answer is framed: the request accepts
// StreamContentType), and returns how it ended. From an older daemon,
// which answers streamed with the status in trailers (or buffered, in
// headers), it takes those, and says on stderr what that answer cut.
func (c *Client) Invoke(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer) (engine.Invocation, error) {
	var inv engine.Invocation
	path := "/v1/functions/" + url.PathEscape(name) + "/invoke"
	body, size, err := invokeInput(stdin)
	if err != nil {
		return inv, fmt.Errorf("invoke %s: stdin: %w", name, err)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://oak"+path, body)
	if err != nil {
		return inv, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	c.authorize(req)
	req.Header.Set("Accept", StreamContentType)
	req.Header.Set("TE", "trailers")
	resp, err := c.http.Do(req)
	if err != nil {
		return inv, &ConnError{Root: c.root, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return inv, errorAnswer(resp, "POST", path)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if resp.Header.Get("Content-Type") == StreamContentType {
		var res *InvokeResult
		err := readFramesTo(resp.Body, stdout, stderr, func(b []byte) error {
			res = new(InvokeResult)
			return json.Unmarshal(b, res)
		})
		var ae *Error
		if errors.As(err, &ae) {
			return inv, err // the daemon's, which names the invocation
		}
		if err != nil {
			return inv, fmt.Errorf("invoke %s: %w", name, err)
		}
		if res == nil {
			return inv, fmt.Errorf("invoke %s: the answer ended without the invocation's result", name)
		}
		return engine.Invocation{ID: res.Id, Code: res.ExitCode, TimedOut: res.TimedOut, OOMKilled: res.OOMKilled,
			Warm: res.Warm, Queued: time.Duration(res.QueueSeconds * float64(time.Second))}, nil
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return inv, fmt.Errorf("invoke %s: stdout: %w", name, err)
	}
	// A field is a trailer of a streamed answer, a header of a buffered one.
	field := func(k string) string {
		if v := resp.Trailer.Get(k); v != "" {
			return v
		}
		return resp.Header.Get(k)
	}
	code, err := strconv.Atoi(field(HeaderExitCode))
	if err != nil {
		return inv, fmt.Errorf("invoke %s: the answer has no %s", name, HeaderExitCode)
	}
	errb, err := base64.StdEncoding.DecodeString(field(HeaderStderr))
	if err != nil {
		return inv, fmt.Errorf("invoke %s: bad %s: %w", name, HeaderStderr, err)
	}
	inv.ID, inv.Code = field(HeaderInvocation), code
	inv.TimedOut, inv.OOMKilled = field(HeaderTimedOut) == "true", field(HeaderOOMKilled) == "true"
	inv.Warm = field(HeaderWarm) == "true"
	if q, err := strconv.ParseFloat(field(HeaderQueueSeconds), 64); err == nil {
		inv.Queued = time.Duration(q * float64(time.Second))
	}
	if field(HeaderStdoutCut) == "true" {
		fmt.Fprintf(stderr, "oak: stdout cut at %d bytes\n", MaxInvokeStdout)
	}
	stderr.Write(errb)
	if field(HeaderStderrCut) == "true" {
		total := field(HeaderStderrBytes)
		if total == "" {
			total = "more"
		}
		fmt.Fprintf(stderr, "oak: stderr cut at %d of %s bytes\n", len(errb), total)
	}
	return inv, nil
}

// invokeInput is stdin as an invocation's request body, and its length
// when known (a regular file's rest; -1 otherwise, sent chunked as it is
// read). A file known to be above MaxInvokeBody is refused here. The
// body is never closed by the request (stdin stays the caller's).
func invokeInput(stdin io.Reader) (io.Reader, int64, error) {
	switch v := stdin.(type) {
	case nil:
		return nil, 0, nil
	case *bytes.Reader:
		return v, int64(v.Len()), nil
	case *strings.Reader:
		return v, int64(v.Len()), nil
	case *os.File:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			if off, err := v.Seek(0, io.SeekCurrent); err == nil {
				n := max(st.Size()-off, 0)
				if n > MaxInvokeBody {
					return nil, 0, fmt.Errorf("%d bytes, above the limit of %d", n, MaxInvokeBody)
				}
				return io.NopCloser(io.LimitReader(v, n)), n, nil
			}
		}
	}
	return io.NopCloser(stdin), -1, nil
}
