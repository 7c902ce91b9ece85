package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"
)

// FunctionEngine is what the function routes ask of the engine;
// *engine.Engine has it. A server whose engine lacks it answers them
// with an error.
type FunctionEngine interface {
	CreateFunction(o engine.FunctionOptions) (*engine.FunctionInfo, error)
	ListFunctions() ([]*engine.FunctionInfo, error)
	InspectFunction(name string) (*engine.FunctionInfo, error)
	RemoveFunction(name string) error
	Invoke(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer) (engine.Invocation, error)
}

// FunctionCreate is the body of POST /v1/functions. A limit left out (0)
// takes the engine's default for a function; a function's invocations
// are always bounded.
type FunctionCreate struct {
	Name  string
	Image string
	// Cmd, when not empty, replaces the image's entrypoint and command.
	Cmd []string `json:",omitempty"`
	Env []string `json:",omitempty"` // KEY=VALUE
	// Memory, PidsLimit and NanoCpus bound each invocation; the
	// function's factory holds Concurrency times them.
	Memory    int64 `json:",omitempty"` // bytes; 0: 128 MiB
	PidsLimit int64 `json:",omitempty"` // 0: 64
	NanoCpus  int64 `json:",omitempty"` // billionths of a core, whole thousandths; 0: one core
	// Timeout is Go's duration notation ("30s", "1m"); "": one minute.
	Timeout     string `json:",omitempty"`
	Concurrency int    `json:",omitempty"` // invocations at once; 0: 4
	Warm        int    `json:",omitempty"` // prepared sandboxes the daemon keeps
}

// FunctionOptions maps c onto the engine's request, refusing values no
// front end could ask for; the rest is the engine's to check.
func (c *FunctionCreate) FunctionOptions() (engine.FunctionOptions, error) {
	o := engine.FunctionOptions{Name: c.Name, Image: c.Image, Command: c.Cmd, Env: c.Env,
		Concurrency: c.Concurrency, Warm: c.Warm}
	switch {
	case c.Name == "":
		return o, &FieldError{"Name", "required"}
	case c.Image == "":
		return o, &FieldError{"Image", "required"}
	case c.Memory < 0:
		return o, &FieldError{"Memory", "want bytes, 0 for the default"}
	case c.PidsLimit < 0:
		return o, &FieldError{"PidsLimit", "want a count, 0 for the default"}
	case c.NanoCpus < 0 || c.NanoCpus%1_000_000 != 0:
		return o, &FieldError{"NanoCpus", "want a whole number of thousandths of a core (multiples of 1000000), 0 for the default"}
	case c.Concurrency < 0:
		return o, &FieldError{"Concurrency", "want a count, 0 for the default"}
	case c.Warm < 0:
		return o, &FieldError{"Warm", "want a count"}
	}
	o.Limits = engine.FunctionLimits{MemoryBytes: c.Memory, Pids: c.PidsLimit, CPUMilli: c.NanoCpus / 1_000_000}
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			return o, &FieldError{"Timeout", fmt.Sprintf("%q: want a positive duration such as 30s", c.Timeout)}
		}
		o.Limits.Timeout = d
	}
	return o, nil
}

// Fields of an invocation's answer, which say how it ended; its body is
// the command's stdout. A client that takes trailers (its request says
// "TE: trailers", as RFC 9110 has a client say so) gets stdout streamed
// as the command writes it, and these fields as trailers after it; any
// other gets the answer when the command has ended, these fields as
// headers (see invokeFunction).
const (
	HeaderInvocation   = "X-Oak-Invocation"       // the id of the container that served it (removed since)
	HeaderExitCode     = "X-Oak-Exit-Code"        // the command's exit status; 137 when killed
	HeaderTimedOut     = "X-Oak-Timed-Out"        // "true" when the function's timeout killed it
	HeaderOOMKilled    = "X-Oak-Oom-Killed"       // "true" when its memory limit killed it
	HeaderStderr       = "X-Oak-Stderr"           // its stderr, standard base64, its first MaxInvokeStderr bytes
	HeaderStderrCut    = "X-Oak-Stderr-Truncated" // "true" when it wrote more than MaxInvokeStderr bytes
	HeaderStdoutCut    = "X-Oak-Stdout-Truncated" // "true" when it wrote more than MaxInvokeStdout bytes
	HeaderQueueSeconds = "X-Oak-Queue-Seconds"    // time it waited for a slot of the function's concurrency
	HeaderWarm         = "X-Oak-Warm"             // "true" when a warm sandbox served it
)

// Bounds of an invocation's request and answer. The request body, its
// stdin, above MaxInvokeBody is refused with 413. A buffered answer
// carries the first MaxInvokeStdout bytes of stdout and MaxInvokeStderr
// of stderr (base64 in a header: 32 KiB is about 43 KB, within what
// common clients take in one header line). A streamed answer carries all
// of stdout (nothing of it is kept) and the first MaxInvokeTrailerStderr
// bytes of stderr: Go's HTTP client refuses a trailer section that does
// not fit its read buffer (4 KiB by default), and 2 KiB in base64 with
// the other trailers fits.
const (
	MaxInvokeBody          = 6 << 20
	MaxInvokeStdout        = 6 << 20
	MaxInvokeStderr        = 32 << 10
	MaxInvokeTrailerStderr = 2 << 10
)

// warmKeeper is an engine that keeps functions' warm sandboxes while it
// serves as the daemon (*engine.Engine).
type warmKeeper interface {
	KeepWarm(ctx context.Context) <-chan struct{}
}

// keepWarm starts eng's warm sandboxes, if it has them, and returns
// their stop, which destroys them and waits until they are gone.
func keepWarm(eng Engine) (stop func()) {
	w, ok := eng.(warmKeeper)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := w.KeepWarm(ctx)
	return func() {
		cancel()
		<-done
	}
}

// functionRoutes are the routes of functions, for the server's table.
func (s *Server) functionRoutes() []Route {
	return []Route{
		{"POST", "/v1/functions", s.createFunction},
		{"GET", "/v1/functions", s.listFunctions},
		{"GET", "/v1/functions/{name}", s.inspectFunction},
		{"DELETE", "/v1/functions/{name}", s.removeFunction},
		{"POST", "/v1/functions/{name}/invoke", s.invokeFunction},
	}
}

var errNoFunctions = errors.New("functions: this daemon's engine does not serve them")

func (s *Server) functions() (FunctionEngine, error) {
	fe, ok := s.eng.(FunctionEngine)
	if !ok {
		return nil, errNoFunctions
	}
	return fe, nil
}

func (s *Server) createFunction(w http.ResponseWriter, r *http.Request) error {
	fe, err := s.functions()
	if err != nil {
		return err
	}
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[FunctionCreate](r.Body)
	if err != nil {
		return err
	}
	o, err := req.FunctionOptions()
	if err != nil {
		return err
	}
	f, err := fe.CreateFunction(o)
	if err != nil {
		return err
	}
	s.log.Info("function created", "name", f.Name, "image", f.Image)
	writeJSON(w, http.StatusCreated, f)
	return nil
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) error {
	fe, err := s.functions()
	if err != nil {
		return err
	}
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	fs, err := fe.ListFunctions()
	if err != nil {
		return err
	}
	if fs == nil {
		fs = []*engine.FunctionInfo{}
	}
	writeJSON(w, http.StatusOK, fs)
	return nil
}

func (s *Server) inspectFunction(w http.ResponseWriter, r *http.Request) error {
	fe, err := s.functions()
	if err != nil {
		return err
	}
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	f, err := fe.InspectFunction(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) removeFunction(w http.ResponseWriter, r *http.Request) error {
	fe, err := s.functions()
	if err != nil {
		return err
	}
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	if err := fe.RemoveFunction(r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// invokeFunction runs one invocation: the request body (at most
// MaxInvokeBody bytes) is its stdin, the answer's body its stdout. To a
// client that takes trailers the answer streams: its status line goes
// with the command's first output (or its end), the body as the command
// writes it, and the X-Oak-* fields that say how it ended are trailers.
// To any other it goes when the command has ended, those fields as
// headers. An error before the command ran is an ErrorBody with its
// status, like every other route's.
func (s *Server) invokeFunction(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	fe, err := s.functions()
	if err != nil {
		return err
	}
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	name := r.PathValue("name")
	in, err := io.ReadAll(io.LimitReader(r.Body, MaxInvokeBody+1))
	if errors.Is(err, errBodyTimeout) {
		return err
	}
	if err != nil {
		return &FieldError{"body", err.Error()}
	}
	if len(in) > MaxInvokeBody {
		return fmt.Errorf("invoke %s: %w", name, errInvokeTooLarge)
	}
	buffered := &cappedBuffer{max: MaxInvokeStdout}
	var stdout io.Writer = buffered
	var stream *streamWriter
	if takesTrailers(r) {
		stream = &streamWriter{w: w}
		stdout = stream
	}
	stderr := &cappedBuffer{max: MaxInvokeStderr}
	if stream != nil {
		stderr.max = MaxInvokeTrailerStderr
	}
	// The engine's work after the invocation (its record's removal, the
	// next warm sandbox) waits until the answer is out.
	answered := make(chan struct{})
	defer close(answered)
	ctx := engine.WithAnswered(engine.WithInvoker(r.Context(), clientOf(r)), answered)
	inv, err := fe.Invoke(ctx, name, bytes.NewReader(in), stdout, stderr)
	trace.Mark("api: invoked")
	if err != nil && inv.ID == "" && (stream == nil || !stream.started) {
		if !errors.Is(err, engine.ErrNoSuchFunction) { // no series for names that name nothing
			s.metrics.invoked(name, "failed", 0)
		}
		return err // an ErrorBody
	}
	result := "ok"
	switch {
	case inv.TimedOut:
		result = "timeout"
	case inv.Code != 0:
		result = "error"
	}
	s.metrics.invoked(name, result, time.Since(start))
	if err != nil {
		s.log.Warn("invocation ended with an error", "function", name, "id", inv.ID, "error", err)
	}
	h := w.Header()
	if stream != nil {
		stream.start() // if the command wrote nothing
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set(HeaderInvocation, inv.ID)
	h.Set(HeaderExitCode, strconv.Itoa(inv.Code))
	h.Set(HeaderTimedOut, strconv.FormatBool(inv.TimedOut))
	h.Set(HeaderOOMKilled, strconv.FormatBool(inv.OOMKilled))
	h.Set(HeaderStderr, base64.StdEncoding.EncodeToString(stderr.b.Bytes()))
	h.Set(HeaderStderrCut, strconv.FormatBool(stderr.cut))
	h.Set(HeaderStdoutCut, strconv.FormatBool(buffered.cut))
	h.Set(HeaderWarm, strconv.FormatBool(inv.Warm))
	h.Set(HeaderQueueSeconds, strconv.FormatFloat(inv.Queued.Seconds(), 'f', -1, 64))
	if stream == nil {
		w.WriteHeader(http.StatusOK)
		w.Write(buffered.b.Bytes())
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	trace.Mark("api: answered")
	return nil
}

// invocationTrailers are the fields a streamed answer sends as trailers.
var invocationTrailers = strings.Join([]string{HeaderInvocation, HeaderExitCode, HeaderTimedOut, HeaderOOMKilled,
	HeaderStderr, HeaderStderrCut, HeaderStdoutCut, HeaderQueueSeconds, HeaderWarm}, ", ")

// takesTrailers reports whether r's client takes trailers: its TE field
// lists "trailers" (RFC 9110, section 10.1.4).
func takesTrailers(r *http.Request) bool {
	for _, v := range r.Header.Values("TE") {
		for _, t := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(t, ";")
			if strings.EqualFold(strings.TrimSpace(name), "trailers") {
				return true
			}
		}
	}
	return false
}

// streamWriter sends a streamed invocation's stdout as it comes: the
// status line and headers (declaring the trailers) with the first write,
// each write flushed. One goroutine writes at a time (the engine's copier
// of stdout, then the handler once Invoke has returned).
type streamWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *streamWriter) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Trailer", invocationTrailers)
	s.w.WriteHeader(http.StatusOK)
}

// Write sends b and flushes it. An error (the client went away) stops the
// copy of the command's output: the command sees its stdout closed, and
// the request's end kills it.
func (s *streamWriter) Write(b []byte) (int, error) {
	s.start()
	n, err := s.w.Write(b)
	if err == nil {
		err = http.NewResponseController(s.w).Flush()
	}
	return n, err
}

// errInvokeTooLarge is an invocation's body above MaxInvokeBody.
var errInvokeTooLarge = &tooLargeError{fmt.Sprintf("request body above %d bytes", MaxInvokeBody)}

type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string   { return e.msg }
func (e *tooLargeError) Is(t error) bool { return t == errTooLarge }

// cappedBuffer keeps the first max bytes written to it and notes whether
// more came. Writes never fail: the command is not to see an error for
// writing too much.
type cappedBuffer struct {
	b   bytes.Buffer
	max int
	cut bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); len(p) > room {
		c.b.Write(p[:max(room, 0)])
		c.cut = true
		return len(p), nil
	}
	return c.b.Write(p)
}

// functionMetrics are the invocation metrics, counted and timed as this
// daemon serves them: oak_invocations_total{function,result} (ok: exit 0,
// error: another status, timeout: killed by the function's timeout,
// failed: did not run) and oak_invocation_seconds{function}, from the
// request's arrival to the command's end (waiting for a slot included),
// for invocations that ran. A series exists once its function was invoked.
type functionMetrics struct {
	set *vm.Set
}

// invocationBuckets are oak_invocation_seconds' upper bounds: 1 ms to
// about 65 s.
var invocationBuckets = func() []float64 {
	b := make([]float64, 17)
	for i := range b {
		b[i] = 0.001 * float64(int(1)<<i)
	}
	return b
}()

// invoked records one invocation's outcome; d is observed for those that
// ran.
func (m *metrics) invoked(function, result string, d time.Duration) {
	fn := strconv.Quote(function)
	m.fn.set.GetOrCreateCounter(`oak_invocations_total{function=` + fn + `,result="` + result + `"}`).Inc()
	if result != "failed" {
		m.fn.set.GetOrCreatePrometheusHistogramExt(`oak_invocation_seconds{function=`+fn+`}`, invocationBuckets).Update(d.Seconds())
	}
}

// clientOf names the client of r for the fairness of invocations: its
// peer process ("pid 123 uid 0"), or its remote address on a connection
// of unknown peer.
func clientOf(r *http.Request) string {
	if p, ok := r.Context().Value(peerKey{}).(peer); ok && p.err == nil && p.pid > 0 {
		return fmt.Sprintf("pid %d uid %d", p.pid, p.uid)
	}
	return "addr " + r.RemoteAddr
}
