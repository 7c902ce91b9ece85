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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/oak-engine/oak/engine"
	"github.com/oak-engine/oak/internal/trace"
	"github.com/oak-engine/oak/services/netsvc"
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

// Fields of an invocation's answer, which say how it ended. An answer
// takes one of four forms, chosen by the request (see invokeFunction):
// framed (Accept: StreamContentType), JSON (Accept: application/json),
// streamed (TE: trailers) or buffered (any other). The streamed and
// buffered forms' body is the command's stdout and these fields are
// their trailers and headers; the framed and JSON forms carry the same
// facts as an InvokeResult.
const (
	HeaderInvocation   = "X-Oak-Invocation"       // the id of the container that served it (removed since)
	HeaderExitCode     = "X-Oak-Exit-Code"        // the command's exit status; 137 when killed
	HeaderTimedOut     = "X-Oak-Timed-Out"        // "true" when the function's timeout killed it
	HeaderOOMKilled    = "X-Oak-Oom-Killed"       // "true" when its memory limit killed it
	HeaderStderr       = "X-Oak-Stderr"           // its stderr, standard base64, its first MaxInvokeStderr (streamed: MaxInvokeTrailerStderr) bytes
	HeaderStderrBytes  = "X-Oak-Stderr-Bytes"     // how many bytes it wrote to stderr, all of them
	HeaderStderrCut    = "X-Oak-Stderr-Truncated" // "true" when X-Oak-Stderr has fewer than X-Oak-Stderr-Bytes
	HeaderStdoutCut    = "X-Oak-Stdout-Truncated" // "true" when it wrote more than MaxInvokeStdout bytes (buffered)
	HeaderQueueSeconds = "X-Oak-Queue-Seconds"    // time it waited for a slot of the function's concurrency
	HeaderWarm         = "X-Oak-Warm"             // "true" when a warm sandbox served it
)

// Bounds of an invocation's request and answer. The request body, its
// stdin, is streamed into the command as it arrives (nothing of it is
// kept); above MaxInvokeBody bytes the invocation is refused with 413
// (at once when its Content-Length says so, else when the excess
// arrives: the command is killed then, and never seen to succeed on a
// cut input). What an answer keeps: a framed or streamed answer keeps
// nothing of stdout (all of it goes out as it is written); a framed one
// keeps nothing of stderr either. A JSON answer carries up to
// MaxInvokeStdout bytes of stdout and MaxInvokeJSONStderr of stderr; a
// buffered one MaxInvokeStdout and MaxInvokeStderr (base64 in a header:
// 32 KiB is about 43 KB, within what common clients take in one header
// line); a streamed one the first MaxInvokeTrailerStderr bytes of stderr
// (Go's HTTP client refuses a trailer section that does not fit its read
// buffer, 4 KiB by default). Whatever is cut is said so, with the size
// that was written.
const (
	MaxInvokeBody          = 64 << 20
	MaxInvokeStdout        = 6 << 20
	MaxInvokeJSONStderr    = 1 << 20
	MaxInvokeStderr        = 32 << 10
	MaxInvokeTrailerStderr = 2 << 10
)

// InvokeResult is how an invocation ended, as a JSON answer (Accept:
// application/json) carries it whole, and as a framed answer's last
// frame (streamResult) carries it without Stdout and Stderr, which went
// in frames before it.
type InvokeResult struct {
	Id           string // the container that served it (removed since)
	ExitCode     int    // the command's status; 137 when killed
	TimedOut     bool   // killed by the function's timeout
	OOMKilled    bool   // killed by its memory limit
	Warm         bool   // served by a warm sandbox
	QueueSeconds float64
	// Stdout and Stderr are what the command wrote (standard base64 in
	// JSON), each up to its bound; StdoutBytes and StderrBytes how much
	// it wrote in all, and the Truncated flags whether that is more than
	// the answer carries.
	Stdout          []byte `json:",omitempty"`
	Stderr          []byte `json:",omitempty"`
	StdoutBytes     int64
	StderrBytes     int64
	StdoutTruncated bool
	StderrTruncated bool
}

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
// MaxInvokeBody bytes, streamed into the command as it arrives) is its
// stdin. The answer's form is the client's choice:
//
//   - framed (Accept lists StreamContentType): stdout and stderr as
//     frames, each as the command writes it, nothing kept; then one
//     streamResult frame, the InvokeResult;
//   - JSON (Accept lists application/json): one InvokeResult when the
//     command has ended, stdout and stderr in it up to their bounds;
//   - streamed (TE: trailers): the body is stdout as the command writes
//     it, and the X-Oak-* fields are trailers (stderr: its first
//     MaxInvokeTrailerStderr bytes);
//   - buffered (any other): the body is stdout up to its bound, sent
//     when the command has ended, the X-Oak-* fields are headers.
//
// An error before the command's first output is an ErrorBody with its
// status, like every other route's; one after it (a body above its bound
// or cut short: the command is killed) is a streamError frame in a
// framed answer and an aborted answer in a streamed one.
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
	if r.ContentLength > MaxInvokeBody {
		return fmt.Errorf("invoke %s: %w", name, errInvokeTooLarge)
	}
	form := invokeForm(r)
	// The body is read while the answer is written. A handler that
	// returns with the body not read to its end must close it, or the
	// server's read of the next request races the body's (golang/go#68560);
	// the close waits for a read still under way (a warm invocation's
	// stdin feeder, bounded by the body's deadline).
	http.NewResponseController(w).EnableFullDuplex()
	defer r.Body.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	in := &invokeBody{r: r.Body, left: MaxInvokeBody, cancel: cancel}

	var stream *streamWriter
	var stdout, stderr io.Writer
	var frames frameStream
	outBuf := &cappedBuffer{max: MaxInvokeStdout}
	errBuf := &cappedBuffer{max: MaxInvokeStderr}
	switch form {
	case formFramed:
		stream = &streamWriter{w: w, contentType: StreamContentType}
		frames = newFrameStream(stream)
		stdout, stderr = frames.writer(streamStdout, outBuf), frames.writer(streamStderr, errBuf)
		outBuf.max, errBuf.max = 0, 0 // counted, not kept
	case formJSON:
		errBuf.max = MaxInvokeJSONStderr
		stdout, stderr = outBuf, errBuf
	case formStreamed:
		stream = &streamWriter{w: w, contentType: "application/octet-stream", trailers: invocationTrailers}
		stdout = io.MultiWriter(counter{outBuf}, stream)
		errBuf.max = MaxInvokeTrailerStderr
		stderr = errBuf
	default:
		stdout, stderr = outBuf, errBuf
	}
	// The engine's work after the invocation (its record's removal, the
	// next warm sandbox) waits until the answer is out.
	answered := make(chan struct{})
	defer close(answered)
	ctx = engine.WithAnswered(engine.WithInvoker(ctx, clientOf(r)), answered)
	inv, err := fe.Invoke(ctx, name, in, stdout, stderr)
	trace.Mark("api: invoked")
	switch {
	case inv.Launch > 0:
		s.metrics.launched(inv.Launch, nil)
	case inv.LaunchFailed:
		s.metrics.launched(0, err)
	}
	started := stream != nil && stream.started
	if berr := in.failed(); berr != nil {
		// Its input was refused or cut short: whatever the command did
		// with what it got is not its answer.
		s.metrics.invoked(name, "failed", 0)
		berr = fmt.Errorf("invoke %s: stdin: %w", name, berr)
		switch {
		case !started:
			return berr
		case form == formFramed:
			frames.fail(berr)
			return nil
		}
		panic(http.ErrAbortHandler) // a streamed answer cannot say so otherwise
	}
	if err != nil && (inv.ID == "" || inv.LaunchFailed) && !started {
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
	res := InvokeResult{Id: inv.ID, ExitCode: inv.Code, TimedOut: inv.TimedOut, OOMKilled: inv.OOMKilled,
		Warm: inv.Warm, QueueSeconds: inv.Queued.Seconds(),
		StdoutBytes: outBuf.n, StderrBytes: errBuf.n}
	switch form {
	case formFramed:
		frames.result(res)
	case formJSON:
		res.Stdout, res.Stderr = outBuf.b.Bytes(), errBuf.b.Bytes()
		res.StdoutTruncated, res.StderrTruncated = outBuf.cut, errBuf.cut
		writeJSON(w, http.StatusOK, res)
	default:
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
		h.Set(HeaderStderr, base64.StdEncoding.EncodeToString(errBuf.b.Bytes()))
		h.Set(HeaderStderrBytes, strconv.FormatInt(errBuf.n, 10))
		h.Set(HeaderStderrCut, strconv.FormatBool(errBuf.cut))
		h.Set(HeaderStdoutCut, strconv.FormatBool(stream == nil && outBuf.cut))
		h.Set(HeaderWarm, strconv.FormatBool(inv.Warm))
		h.Set(HeaderQueueSeconds, strconv.FormatFloat(inv.Queued.Seconds(), 'f', -1, 64))
		if stream == nil {
			w.WriteHeader(http.StatusOK)
			w.Write(outBuf.b.Bytes())
		}
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	trace.Mark("api: answered")
	return nil
}

// The forms of an invocation's answer (see invokeFunction).
const (
	formBuffered = iota
	formStreamed
	formJSON
	formFramed
)

// invokeForm is the form of answer r asks for: framed or JSON by its
// Accept field (framed first when it lists both), else streamed when it
// takes trailers, else buffered.
func invokeForm(r *http.Request) int {
	json := false
	for _, v := range r.Header.Values("Accept") {
		for _, t := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(t, ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case StreamContentType:
				return formFramed
			case "application/json":
				json = true
			}
		}
	}
	switch {
	case json:
		return formJSON
	case takesTrailers(r):
		return formStreamed
	}
	return formBuffered
}

// invocationTrailers are the fields a streamed answer sends as trailers.
var invocationTrailers = strings.Join([]string{HeaderInvocation, HeaderExitCode, HeaderTimedOut, HeaderOOMKilled,
	HeaderStderr, HeaderStderrBytes, HeaderStderrCut, HeaderStdoutCut, HeaderQueueSeconds, HeaderWarm}, ", ")

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

// invokeBody is an invocation's request body as the command's stdin:
// read as the command reads it, never past MaxInvokeBody. A body above
// that, or one that fails (cut short, not received in time), ends the
// invocation: its context is cancelled, which kills the command, and the
// handler answers with the cause (failed), not with the command's status.
type invokeBody struct {
	r      io.Reader
	left   int64
	cancel context.CancelFunc
	mu     sync.Mutex
	err    error
}

func (b *invokeBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more tells a body above the bound
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		return int(b.left), b.fail(errInvokeTooLarge)
	}
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		err = b.fail(err)
	}
	return n, err
}

func (b *invokeBody) fail(err error) error {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.cancel()
	return err
}

// failed is why the body ended the invocation, nil if it did not.
func (b *invokeBody) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// streamWriter sends a streamed or framed answer as it comes: the status
// line and headers (declaring the trailers, if any) with the first
// write, each write flushed. One goroutine writes at a time (the engine's
// copier of stdout, or a frameStream's lock, then the handler once Invoke
// has returned).
type streamWriter struct {
	w           http.ResponseWriter
	contentType string
	trailers    string // declared in the header; "" none
	noFlush     bool   // the writer flushes (a frame's header and payload go together)
	started     bool
}

func (s *streamWriter) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", s.contentType)
	if s.trailers != "" {
		h.Set("Trailer", s.trailers)
	}
	s.w.WriteHeader(http.StatusOK)
}

// Write sends b and flushes it. An error (the client went away) stops the
// copy of the command's output: the command sees its stdout closed, and
// the request's end kills it.
func (s *streamWriter) Write(b []byte) (int, error) {
	s.start()
	n, err := s.w.Write(b)
	if err == nil && !s.noFlush {
		err = s.flush()
	}
	return n, err
}

func (s *streamWriter) flush() error { return http.NewResponseController(s.w).Flush() }

// frameStream writes a framed answer: the command's stdout and stderr as
// frames (see stream.go), each write one frame, flushed; then one
// streamResult or streamError frame.
type frameStream struct {
	mu *sync.Mutex
	sw *streamWriter
}

func newFrameStream(sw *streamWriter) frameStream {
	sw.noFlush = true
	return frameStream{mu: new(sync.Mutex), sw: sw}
}

func (f frameStream) frames(stream byte) frameWriter {
	return frameWriter{mu: f.mu, w: f.sw, flush: func() { f.sw.flush() }, stream: stream}
}

// writer is the frames of one stream, counted into c (which keeps none
// of them when its max is 0).
func (f frameStream) writer(stream byte, c *cappedBuffer) io.Writer {
	return io.MultiWriter(counter{c}, f.frames(stream))
}

// result ends the answer with res.
func (f frameStream) result(res InvokeResult) {
	b, _ := json.Marshal(res)
	f.frames(streamResult).frame(b)
}

// fail ends the answer with err.
func (f frameStream) fail(err error) {
	_, code := classify(err, false)
	if errors.Is(err, errTooLarge) {
		code = CodeTooLarge
	} else if errors.Is(err, errBodyTimeout) {
		code = CodeTimeout
	}
	b, _ := json.Marshal(ErrorBody{Error: err.Error(), Code: code})
	f.frames(streamError).frame(b)
}

// errInvokeTooLarge is an invocation's body above MaxInvokeBody.
var errInvokeTooLarge = &tooLargeError{fmt.Sprintf("request body above %d bytes", MaxInvokeBody)}

type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string   { return e.msg }
func (e *tooLargeError) Is(t error) bool { return t == errTooLarge }

// cappedBuffer keeps the first max bytes written to it, counts them all
// (n), and notes whether more came than it kept (cut). Writes never
// fail: the command is not to see an error for writing too much.
type cappedBuffer struct {
	b   bytes.Buffer
	max int
	n   int64
	cut bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if room := c.max - c.b.Len(); len(p) > room {
		c.b.Write(p[:max(room, 0)])
		c.cut = true
		return len(p), nil
	}
	return c.b.Write(p)
}

// counter counts what goes through it into a cappedBuffer that keeps
// nothing (a stream whose bytes went out, but whose size is reported).
type counter struct{ c *cappedBuffer }

func (c counter) Write(p []byte) (int, error) {
	c.c.n += int64(len(p))
	return len(p), nil
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

// functionCounter is how the engine reads the trapped calls of the
// invocations it ended, by function (*engine.Engine has it).
type functionCounter interface {
	FunctionNetCounts() map[string]*engine.NetCounts
}

// writeFunctionNetCounts writes the trapped calls of ended invocations by
// function, call and outcome, as oak_trapped_calls_total{function=...}:
// an invocation's container is counted by its container while it runs
// and by its function once it is removed (its counters file goes with
// it), so that the two kinds of series together count every call once.
// Only calls that happened have a series.
func writeFunctionNetCounts(w io.Writer, fs map[string]*engine.NetCounts) {
	names := make([]string, 0, len(fs))
	for n := range fs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fn := strconv.Quote(n)
		for k, row := range fs[n].Calls {
			for o, v := range row {
				if v > 0 && k < len(netsvc.Calls) && o < len(netsvc.Outcomes) {
					vm.WriteCounterUint64(w, `oak_trapped_calls_total{function=`+fn+`,call="`+netsvc.Calls[k]+
						`",outcome="`+netsvc.Outcomes[o]+`"}`, v)
				}
			}
		}
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
