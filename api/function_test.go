package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oak-engine/oak/engine"
)

// fakeFunctions adds functions to fakeEngine: "echo" copies its input to
// stdout upper-cased and says "note" on stderr; "fail" exits 3 with a
// long stderr; "slow" times out; any other name is no function.
type fakeFunctions struct {
	*fakeEngine
	created engine.FunctionOptions
	client  string        // of the last invocation
	next    chan struct{} // lets "stream" write its second line
}

func (f *fakeFunctions) CreateFunction(o engine.FunctionOptions) (*engine.FunctionInfo, error) {
	f.created = o
	return &engine.FunctionInfo{Name: o.Name, Image: o.Image, Factory: "fn-" + o.Name}, nil
}

func (f *fakeFunctions) ListFunctions() ([]*engine.FunctionInfo, error) {
	return []*engine.FunctionInfo{{Name: "echo"}}, nil
}

func (f *fakeFunctions) InspectFunction(name string) (*engine.FunctionInfo, error) {
	if name != "echo" {
		return nil, fmt.Errorf("function %s: %w", name, engine.ErrNoSuchFunction)
	}
	return &engine.FunctionInfo{Name: name}, nil
}

func (f *fakeFunctions) RemoveFunction(name string) error {
	_, err := f.InspectFunction(name)
	return err
}

func (f *fakeFunctions) Invoke(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer) (engine.Invocation, error) {
	f.client = engine.InvokerOf(ctx)
	switch name {
	case "first":
		// Answers with its input's first line, not waiting for the rest:
		// only an input streamed in reaches it before the body's end.
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil {
			return engine.Invocation{ID: "c5", Code: 1, Launch: time.Millisecond}, nil
		}
		io.WriteString(stdout, line)
		return engine.Invocation{ID: "c5", Launch: time.Millisecond}, nil
	case "count":
		// Says how much input it read, or that reading it failed, and
		// writes its input's size to stderr, in bytes of "e".
		n, err := io.Copy(io.Discard, stdin)
		if err != nil {
			io.WriteString(stdout, "read error")
			return engine.Invocation{ID: "c6", Launch: time.Millisecond}, nil
		}
		fmt.Fprint(stdout, n)
		io.Copy(stderr, io.LimitReader(repeatE{}, n))
		return engine.Invocation{ID: "c6", Launch: time.Millisecond}, nil
	case "early":
		// Writes before it reads its input, and after.
		io.WriteString(stdout, "started\n")
		io.Copy(io.Discard, stdin)
		io.WriteString(stdout, "done\n")
		return engine.Invocation{ID: "c8", Launch: time.Millisecond}, nil
	case "broken":
		// A launch that failed: its container was made, its command never ran.
		return engine.Invocation{ID: "c7", LaunchFailed: true}, errors.New("run demo: exec /nope: no such file")
	}
	in, _ := io.ReadAll(stdin)
	switch name {
	case "echo":
		stdout.Write(bytes.ToUpper(in))
		io.WriteString(stderr, "note")
		return engine.Invocation{ID: "c1", Launch: 2 * time.Millisecond}, nil
	case "fail":
		io.WriteString(stdout, "partial")
		stderr.Write(bytes.Repeat([]byte("e"), MaxInvokeStderr+10))
		return engine.Invocation{ID: "c2", Code: 3}, nil
	case "slow":
		return engine.Invocation{ID: "c3", Code: 137, TimedOut: true}, nil
	case "stream":
		// Its second line only after the client has read its first.
		io.WriteString(stdout, "first\n")
		select {
		case <-f.next:
		case <-ctx.Done():
			return engine.Invocation{ID: "c4", Code: 137}, nil
		}
		io.WriteString(stdout, "second\n")
		io.WriteString(stderr, "bye")
		return engine.Invocation{ID: "c4", Code: 5}, nil
	}
	return engine.Invocation{}, fmt.Errorf("function %s: %w", name, engine.ErrNoSuchFunction)
}

// repeatE reads as an endless run of "e".
type repeatE struct{}

func (repeatE) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'e'
	}
	return len(p), nil
}

func newFunctionServer(t *testing.T) (*Client, *fakeFunctions, *Server) {
	f := &fakeFunctions{fakeEngine: &fakeEngine{}, next: make(chan struct{})}
	s := NewServer(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetReady()
	hs := httptest.NewUnstartedServer(s)
	// A TCP connection has no peer credentials: it acts as root's, with
	// no process, so invocations know the client by its address.
	hs.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return withPeer(ctx, peer{uid: 0})
	}
	hs.Start()
	t.Cleanup(hs.Close)
	addr := hs.Listener.Addr().String()
	c := newClient(t.TempDir(), func() (net.Conn, error) { return net.Dial("tcp", addr) })
	return c, f, s
}

// TestInvokeOverHTTP: stdin goes in as the body, stdout comes back as the
// body, and the status, timeout and stderr in trailers, through the
// client a CLI uses.
func TestInvokeOverHTTP(t *testing.T) {
	c, f, reg := newFunctionServer(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	inv, err := c.Invoke(ctx, "echo", strings.NewReader("hello"), &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "HELLO" || errb.String() != "note" || inv.Code != 0 || inv.ID != "c1" || inv.TimedOut {
		t.Fatalf("echo: stdout %q stderr %q %+v", out.String(), errb.String(), inv)
	}
	if !strings.HasPrefix(f.client, "addr ") {
		t.Errorf("client of a TCP connection = %q, want its address", f.client)
	}
	out.Reset()
	errb.Reset()
	inv, err = c.Invoke(ctx, "fail", nil, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	// All of stderr, however long: the answer is framed.
	if out.String() != "partial" || inv.Code != 3 || errb.String() != strings.Repeat("e", MaxInvokeStderr+10) {
		t.Fatalf("fail: stdout %q, stderr of %d bytes, %+v", out.String(), errb.Len(), inv)
	}
	inv, err = c.Invoke(ctx, "slow", nil, &out, &errb)
	if err != nil || !inv.TimedOut || inv.Code != 137 {
		t.Fatalf("slow: %+v, %v", inv, err)
	}
	_, err = c.Invoke(ctx, "nope", nil, &out, &errb)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !errors.Is(err, engine.ErrNoSuchFunction) {
		t.Fatalf("nope: %v, want a 404 that is ErrNoSuchFunction", err)
	}
	for fn, result := range map[string]string{"echo": "ok", "fail": "error", "slow": "timeout"} {
		if got := invocations(t, reg, fn, result); got != 1 {
			t.Errorf("oak_invocations_total{function=%q,result=%q} = %v, want 1", fn, result, got)
		}
	}
	// Only measured values: one histogram series per function that ran,
	// and no series for a name that names no function.
	if n := series(t, reg, "oak_invocation_seconds"); n != 3 {
		t.Errorf("oak_invocation_seconds has %d series, want 3 (echo, fail, slow)", n)
	}
	if n := series(t, reg, "oak_invocations_total"); n != 3 {
		t.Errorf("oak_invocations_total has %d series, want 3", n)
	}
}

// scrape is what s answers on /metrics.
func scrape(t *testing.T, s *Server) string {
	t.Helper()
	w := do(s, "GET", "/metrics", "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

// series counts the series of metric name (a histogram's by its _count).
func series(t *testing.T, s *Server, name string) int {
	n := 0
	for _, l := range strings.Split(scrape(t, s), "\n") {
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+"_count{") {
			n++
		}
	}
	return n
}

// invocations is the value of oak_invocations_total{function,result}.
func invocations(t *testing.T, s *Server, function, result string) float64 {
	prefix := fmt.Sprintf("oak_invocations_total{function=%q,result=%q} ", function, result)
	for _, l := range strings.Split(scrape(t, s), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return 0
}

func TestFunctionRoutes(t *testing.T) {
	s, _ := newTestServer(t) // an engine without functions
	if w := do(s, "GET", "/v1/functions", ""); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "does not serve") {
		t.Errorf("functions of an engine without them: %d %s", w.Code, w.Body)
	}
	f := &fakeFunctions{fakeEngine: &fakeEngine{}, next: make(chan struct{})}
	s = NewServer(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		method, target, body string
		status               int
		code                 string
	}{
		{"POST", "/v1/functions", `{"Name":"echo","Image":"demo","Cmd":["cat"],"Memory":67108864,"NanoCpus":500000000,"Timeout":"5s","Concurrency":2,"Warm":1}`, 201, ""},
		{"POST", "/v1/functions", `{"Name":"echo","Image":"demo","Bogus":1}`, 400, CodeBadRequest},
		{"POST", "/v1/functions", `{"Name":"echo","Image":"demo","Timeout":"soon"}`, 400, CodeBadRequest},
		{"POST", "/v1/functions", `{"Name":"echo","Image":"demo","NanoCpus":1}`, 400, CodeBadRequest},
		{"POST", "/v1/functions", `{"Image":"demo"}`, 400, CodeBadRequest},
		{"POST", "/v1/functions?x=1", `{"Name":"echo","Image":"demo"}`, 400, CodeBadRequest},
		{"GET", "/v1/functions", "", 200, ""},
		{"GET", "/v1/functions/echo", "", 200, ""},
		{"GET", "/v1/functions/nope", "", 404, CodeNoSuchFunction},
		{"DELETE", "/v1/functions/echo", "", 204, ""},
		{"DELETE", "/v1/functions/nope", "", 404, CodeNoSuchFunction},
		{"POST", "/v1/functions/nope/invoke", "x", 404, CodeNoSuchFunction},
		{"POST", "/v1/functions/echo/invoke?wait=1", "x", 400, CodeBadRequest},
		{"POST", "/v1/functions/echo/invoke", strings.Repeat("x", MaxInvokeBody+1), 413, CodeTooLarge},
		{"GET", "/v1/functions/echo/invoke", "", 405, CodeMethodNotAllowed},
	} {
		w := do(s, tc.method, tc.target, tc.body)
		if w.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.target, w.Code, tc.status, w.Body)
			continue
		}
		if tc.code != "" {
			var e ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != tc.code {
				t.Errorf("%s %s: body %s, want code %s", tc.method, tc.target, w.Body, tc.code)
			}
		}
	}
	want := engine.FunctionOptions{Name: "echo", Image: "demo", Command: []string{"cat"}, Concurrency: 2, Warm: 1,
		Limits: engine.FunctionLimits{MemoryBytes: 64 << 20, CPUMilli: 500, Timeout: 5 * time.Second}}
	if !reflect.DeepEqual(f.created, want) {
		t.Errorf("created %+v, want %+v", f.created, want)
	}
}

// FuzzFunctionCreate feeds arbitrary bodies to the decoding of a function
// create request and its mapping onto the engine's options: no panic, a
// refusal names a field, an accepted body survives a round trip, and
// what is handed on has no negative limit.
func FuzzFunctionCreate(f *testing.F) {
	for _, s := range []string{
		`{"Name":"echo","Image":"demo"}`,
		`{"Name":"echo","Image":"demo","Cmd":["sh","-c","cat"],"Env":["A=1"],"Memory":67108864,"PidsLimit":16}`,
		`{"Name":"e","Image":"/srv/root","NanoCpus":500000000,"Timeout":"1m","Concurrency":8,"Warm":2}`,
		`{"Name":"e","Image":"demo","Timeout":"-1s"}`, `{"Name":"e","Image":"demo","Memory":-1}`,
		`{"Name":"echo","Image":"demo","Bogus":true}`, `{"Name":1}`, `[]`, `null`, ``,
		`{"Name":"a","Image":"b"}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeJSON[FunctionCreate](b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal %v names no field", err)
			}
			return
		}
		o, err := r.FunctionOptions()
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal %v names no field", err)
			}
		} else if o.Limits.MemoryBytes < 0 || o.Limits.Pids < 0 || o.Limits.CPUMilli < 0 || o.Limits.Timeout < 0 ||
			o.Concurrency < 0 || o.Warm < 0 || o.Name == "" || o.Image == "" {
			t.Fatalf("accepted %s as %+v", b, o)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		r2, err := decodeJSON[FunctionCreate](again)
		if err != nil {
			t.Fatalf("own encoding %s refused: %v", again, err)
		}
		if !reflect.DeepEqual(r, r2) && !reflect.DeepEqual(normalFunction(r), normalFunction(r2)) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, r2)
		}
	})
}

// normalFunction makes empty and absent lists alike (omitempty drops
// an empty one).
func normalFunction(r *FunctionCreate) FunctionCreate {
	n := *r
	if len(n.Cmd) == 0 {
		n.Cmd = nil
	}
	if len(n.Env) == 0 {
		n.Env = nil
	}
	return n
}

// lineSignal closes ch when a write ends a line: the client has seen one.
type lineSignal struct {
	buf  bytes.Buffer
	ch   chan struct{}
	once bool
}

func (l *lineSignal) Write(b []byte) (int, error) {
	l.buf.Write(b)
	if !l.once && bytes.Contains(l.buf.Bytes(), []byte("\n")) {
		l.once = true
		close(l.ch)
	}
	return len(b), nil
}

// TestInvokeStreams: a client that takes trailers gets stdout as it is
// written (the fake's second line waits until the client has read the
// first, so a buffered answer would never come) and the status and
// stderr as trailers; one that does not gets the answer at the end, the
// status in headers, stderr up to MaxInvokeStderr.
func TestInvokeStreams(t *testing.T) {
	c, f, _ := newFunctionServer(t)
	out := &lineSignal{ch: f.next}
	var errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, err := c.Invoke(ctx, "stream", nil, out, &errb)
	if err != nil || inv.Code != 5 || inv.ID != "c4" || out.buf.String() != "first\nsecond\n" || errb.String() != "bye" {
		t.Fatalf("streamed: %+v %v, stdout %q, stderr %q", inv, err, out.buf.String(), errb.String())
	}

	// Buffered: no TE: trailers.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.dial()
	}}}
	resp, err := hc.Post("http://oak/v1/functions/fail/invoke", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e, _ := base64.StdEncoding.DecodeString(resp.Header.Get(HeaderStderr))
	if string(body) != "partial" || resp.Header.Get(HeaderExitCode) != "3" || len(e) != MaxInvokeStderr ||
		resp.Header.Get(HeaderStderrCut) != "true" || resp.Header.Get(HeaderStderrBytes) != strconv.Itoa(MaxInvokeStderr+10) ||
		len(resp.Trailer) != 0 {
		t.Fatalf("buffered: %q, stderr of %d bytes, headers %v, trailers %v", body, len(e), resp.Header, resp.Trailer)
	}
	// Streamed by hand: the fields are trailers, not headers.
	req, _ := http.NewRequest("POST", "http://oak/v1/functions/fail/invoke", nil)
	req.Header.Set("TE", "gzip, trailers;q=1")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	e, _ = base64.StdEncoding.DecodeString(resp.Trailer.Get(HeaderStderr))
	if string(body) != "partial" || resp.Header.Get(HeaderExitCode) != "" || resp.Trailer.Get(HeaderExitCode) != "3" ||
		resp.Trailer.Get(HeaderStderrCut) != "true" || len(e) != MaxInvokeTrailerStderr ||
		resp.Trailer.Get(HeaderStderrBytes) != strconv.Itoa(MaxInvokeStderr+10) {
		t.Fatalf("streamed: %q, headers %v, trailers %v", body, resp.Header, resp.Trailer)
	}
}

func TestTakesTrailers(t *testing.T) {
	for _, tc := range []struct {
		te   []string
		want bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"trailers"}, true},
		{[]string{"Trailers"}, true},
		{[]string{"gzip, trailers;q=0.5"}, true},
		{[]string{"gzip", " trailers "}, true},
		{[]string{"gzip, deflate"}, false},
		{[]string{"trailersx"}, false},
		{[]string{"x-trailers"}, false},
	} {
		r := httptest.NewRequest("POST", "/v1/functions/f/invoke", nil)
		for _, v := range tc.te {
			r.Header.Add("TE", v)
		}
		if got := takesTrailers(r); got != tc.want {
			t.Errorf("TE %q: takesTrailers = %v, want %v", tc.te, got, tc.want)
		}
	}
}

// FuzzTakesTrailers: any TE field is read without a panic, and a field
// that lists "trailers" as one of its codings is always taken.
func FuzzTakesTrailers(f *testing.F) {
	f.Add("gzip, trailers;q=1")
	f.Add(",,;;")
	f.Fuzz(func(t *testing.T, te string) {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header["Te"] = []string{te}
		takesTrailers(r)
		r.Header["Te"] = []string{te + ", trailers"}
		if !takesTrailers(r) {
			t.Fatalf("TE %q: not taken", te+", trailers")
		}
	})
}

// TestInvokeWholeStderrAndStdin: a framed answer (what Client.Invoke asks
// for) carries all of stderr, far above any bound of the other forms;
// the input is streamed in (a function that answers on its first line
// answers while the body is still open), and a large one arrives whole.
func TestInvokeWholeStderrAndStdin(t *testing.T) {
	c, _, _ := newFunctionServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const big = 8 << 20 // above MaxInvokeStdout and MaxInvokeJSONStderr
	var out, errb bytes.Buffer
	inv, err := c.Invoke(ctx, "count", io.LimitReader(repeatE{}, big), &out, &errb) // chunked: length unknown
	if err != nil || inv.ID != "c6" || out.String() != strconv.Itoa(big) || errb.Len() != big {
		t.Fatalf("count: %+v %v, stdout %q, stderr of %d bytes", inv, err, out.String(), errb.Len())
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	go io.WriteString(pw, "hello\nand more to come")
	out.Reset()
	// Well within the server's body timeout, which would end a body
	// read whole first.
	fctx, fcancel := context.WithTimeout(ctx, DefaultBodyTimeout/3)
	defer fcancel()
	inv, err = c.Invoke(fctx, "first", pr, &out, nil)
	if err != nil || inv.Code != 0 || out.String() != "hello\n" {
		t.Fatalf("first: %+v %v, stdout %q: the input was not streamed in", inv, err, out.String())
	}
}

// TestInvokeTooLarge: an input above MaxInvokeBody is refused with 413
// and code too_large, whether its length was declared or not, and
// whatever the command did with the part it got is not the answer.
func TestInvokeTooLarge(t *testing.T) {
	c, _, reg := newFunctionServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Framed (Client.Invoke), chunked: the command has answered by the
	// time the excess arrives, so the refusal is the stream's last frame.
	_, err := c.Invoke(ctx, "count", io.LimitReader(repeatE{}, MaxInvokeBody+1), io.Discard, io.Discard)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodeTooLarge || !strings.Contains(err.Error(), fmt.Sprintf("above %d bytes", MaxInvokeBody)) {
		t.Fatalf("framed, chunked: %v, want a too_large error naming the bound", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.dial()
	}}}
	// JSON, chunked. (A declared length above the bound is refused before
	// anything is read: TestFunctionRoutes.)
	body := io.NopCloser(io.LimitReader(repeatE{}, MaxInvokeBody+1))
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://oak/v1/functions/count/invoke", body)
	req.Header.Set("Accept", "application/json")
	req.ContentLength = -1
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e ErrorBody
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Code != CodeTooLarge || !strings.Contains(e.Error, "stdin") {
		t.Errorf("JSON, chunked: %d %+v, want 413 too_large about stdin", resp.StatusCode, e)
	}
	if got := invocations(t, reg, "count", "failed"); got != 2 {
		t.Errorf("oak_invocations_total{function=count,result=failed} = %v, want 2", got)
	}
}

// TestInvokeJSON: Accept: application/json gets one InvokeResult, stderr
// in it up to MaxInvokeJSONStderr, and says how much was written and
// that it was cut.
func TestInvokeJSON(t *testing.T) {
	c, _, _ := newFunctionServer(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.dial()
	}}}
	for _, tc := range []struct {
		in  int
		cut bool
	}{{100, false}, {MaxInvokeJSONStderr + 5, true}} {
		req, _ := http.NewRequest("POST", "http://oak/v1/functions/count/invoke", io.LimitReader(repeatE{}, int64(tc.in)))
		req.Header.Set("Accept", "application/json")
		req.Header.Set("TE", "trailers") // JSON asked for: it wins
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res InvokeResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		want := min(tc.in, MaxInvokeJSONStderr)
		if err != nil || resp.Header.Get("Content-Type") != "application/json" || res.Id != "c6" ||
			string(res.Stdout) != strconv.Itoa(tc.in) || len(res.Stderr) != want || res.StderrBytes != int64(tc.in) ||
			res.StderrTruncated != tc.cut || res.StdoutTruncated {
			t.Errorf("stderr of %d bytes: %v, %+v (stderr %d bytes)", tc.in, err, res, len(res.Stderr))
		}
	}
}

// TestInvokeLaunchMetrics: an invocation is a launch: its launch time is
// in oak_launch_seconds and oak_launches_total like a container's, and one
// whose command never ran is a failed launch and a failed invocation,
// answered with an error rather than an exit status.
func TestInvokeLaunchMetrics(t *testing.T) {
	c, _, reg := newFunctionServer(t)
	ctx := context.Background()
	if _, err := c.Invoke(ctx, "echo", strings.NewReader("x"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, err := c.Invoke(ctx, "broken", nil, io.Discard, io.Discard)
	var ae *Error
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("broken: %v, want the launch's error", err)
	}
	m := scrape(t, reg)
	for _, want := range []string{`oak_launches_total{result="ok"} 1`, `oak_launches_total{result="failed"} 1`,
		`oak_launch_seconds_count 1`, `oak_launch_seconds_sum 0.002`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if got := invocations(t, reg, "broken", "failed"); got != 1 {
		t.Errorf("oak_invocations_total{function=broken,result=failed} = %v, want 1", got)
	}
}

// FuzzInvokeForm: any Accept and TE fields are read without a panic; a
// request that lists the framed type gets frames, whatever else it
// lists; one that lists JSON and not the framed type gets JSON.
func FuzzInvokeForm(f *testing.F) {
	f.Add("application/json;q=0.9, */*", "trailers")
	f.Add(StreamContentType, "")
	f.Add(",,;;", ",")
	f.Fuzz(func(t *testing.T, accept, te string) {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header["Accept"] = []string{accept}
		r.Header["Te"] = []string{te}
		form := invokeForm(r)
		r.Header["Accept"] = []string{accept + ", " + StreamContentType}
		if invokeForm(r) != formFramed {
			t.Fatalf("Accept %q: not framed", r.Header["Accept"])
		}
		if form == formFramed {
			return
		}
		r.Header["Accept"] = []string{accept + ", Application/JSON; charset=utf-8"}
		if invokeForm(r) != formJSON {
			t.Fatalf("Accept %q: not JSON", r.Header["Accept"])
		}
	})
}

// TestInvokeStreamedTooLarge: a streamed answer (TE: trailers) whose
// command wrote before its input went over the bound is aborted, not
// ended with trailers that would make it look whole; a framed one ends
// with the refusal.
func TestInvokeStreamedTooLarge(t *testing.T) {
	c, _, _ := newFunctionServer(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.dial()
	}}}
	req, _ := http.NewRequest("POST", "http://oak/v1/functions/early/invoke", io.LimitReader(repeatE{}, MaxInvokeBody+1))
	req.ContentLength = -1
	req.Header.Set("TE", "trailers")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || resp.Trailer.Get(HeaderExitCode) != "" || !strings.HasPrefix(string(body), "started") {
		t.Fatalf("streamed: %d %q, %v, trailers %v: want an aborted answer", resp.StatusCode, body, err, resp.Trailer)
	}
	var out bytes.Buffer
	_, err = c.Invoke(context.Background(), "early", io.LimitReader(repeatE{}, MaxInvokeBody+1), &out, nil)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodeTooLarge || !strings.HasPrefix(out.String(), "started\n") ||
		strings.Count(err.Error(), "invoke early") != 1 {
		t.Fatalf("framed: %v, stdout %q: want the output, then a too_large error", err, out.String())
	}
}
