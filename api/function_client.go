package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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

// Invoke runs one invocation of function name with stdin (read whole
// first, at most MaxInvokeBody bytes) as its input, copies its stdout to
// stdout as the command writes it (the answer streams: the request says
// it takes trailers) and its stderr (at most MaxInvokeStderr bytes) to
// stderr at the end, and returns how it ended. From a daemon that answers
// buffered, with the status in headers, it takes those.
func (c *Client) Invoke(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer) (engine.Invocation, error) {
	var inv engine.Invocation
	path := "/v1/functions/" + url.PathEscape(name) + "/invoke"
	var in []byte
	if stdin != nil {
		b, err := io.ReadAll(io.LimitReader(stdin, MaxInvokeBody+1))
		if err != nil {
			return inv, fmt.Errorf("invoke %s: stdin: %w", name, err)
		}
		if len(b) > MaxInvokeBody {
			return inv, fmt.Errorf("invoke %s: stdin above %d bytes", name, MaxInvokeBody)
		}
		in = b
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://oak"+path, bytesReader(in))
	if err != nil {
		return inv, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	c.authorize(req)
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
	if field(HeaderStdoutCut) == "true" && stderr != nil {
		fmt.Fprintf(stderr, "oak: stdout cut at %d bytes\n", MaxInvokeStdout)
	}
	if stderr != nil && len(errb) > 0 {
		stderr.Write(errb)
	}
	if field(HeaderStderrCut) == "true" && stderr != nil {
		fmt.Fprintf(stderr, "oak: stderr cut at %d bytes\n", len(errb))
	}
	return inv, nil
}
