package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oak-engine/oak/engine"
)

// Engine is what the server asks of the engine; *engine.Engine has it.
// The server holds no container state of its own: every answer comes
// from the records and supervisors the engine reaches, which is why a
// new daemon picks up where a killed one stopped.
type Engine interface {
	RunDetached(opts engine.RunOptions) (string, error)
	ListContainers(f engine.Filter) ([]*engine.ContainerInfo, error)
	InspectContainer(ref string) (*engine.ContainerInfo, error)
	Start(ref string) error
	Stop(ref string, sig syscall.Signal, timeout time.Duration) (int, error)
	Restart(ref string, sig syscall.Signal, timeout time.Duration) error
	Kill(ref string, sig syscall.Signal) error
	Wait(ctx context.Context, ref string) (int, error)
	Remove(ref string, force bool) error
	Logs(ctx context.Context, ref string, opts engine.LogsOptions, stdout, stderr io.Writer) error
	Exec(ref string, opts engine.ExecOptions, stdin, stdout, stderr *os.File, sigs <-chan os.Signal) (int, error)
	Grants(ref string) ([]string, error)
	Revoke(ref, grant string) error
	ListImages() ([]*engine.ImageInfo, error)
	InspectImage(ref string) (*engine.ImageInfo, error)
	RemoveImage(ref string) error
	ListVolumes() ([]*engine.VolumeInfo, error)
	InspectVolume(name string) (*engine.VolumeInfo, error)
	CreateVolume(name string, size int64, o engine.VolumeOptions) (*engine.VolumeInfo, error)
	RemoveVolume(name string) error
}

// Route is one endpoint: a method and a net/http pattern.
type Route struct {
	Method  string
	Pattern string
	handler func(w http.ResponseWriter, r *http.Request) error
}

// Server answers the API for one engine.
type Server struct {
	eng     Engine
	log     *slog.Logger
	metrics *metrics
	routes  []Route
	mux     *http.ServeMux
	pool    *pool // supervisors of foreground runs (run_linux.go); nil: none served
	ready   atomic.Bool
	// BodyTimeout bounds the time a client may take to send a request
	// body (DefaultBodyTimeout; see deadline.go).
	BodyTimeout time.Duration
}

// NewServer makes the server of eng, logging to log and registering its
// metrics with reg. It answers /v1/ready with 503 until SetReady.
func NewServer(eng Engine, log *slog.Logger) *Server {
	s := &Server{eng: eng, log: log, mux: http.NewServeMux(), BodyTimeout: DefaultBodyTimeout}
	s.metrics = newMetrics(eng)
	s.routes = []Route{
		{"GET", "/v1/health", s.health},
		{"GET", "/v1/ready", s.readiness},
		{"GET", "/v1/core", s.hostCore},
		{"POST", "/v1/containers", s.createContainer},
		{"POST", "/v1/containers/run", s.runAttached},
		{"GET", "/v1/containers", s.listContainers},
		{"GET", "/v1/containers/{id}", s.inspectContainer},
		{"DELETE", "/v1/containers/{id}", s.removeContainer},
		{"POST", "/v1/containers/{id}/start", s.startContainer},
		{"POST", "/v1/containers/{id}/stop", s.stopContainer},
		{"POST", "/v1/containers/{id}/restart", s.restartContainer},
		{"POST", "/v1/containers/{id}/kill", s.killContainer},
		{"POST", "/v1/containers/{id}/wait", s.waitContainer},
		{"GET", "/v1/containers/{id}/logs", s.containerLogs},
		{"POST", "/v1/containers/{id}/exec", s.execContainer},
		{"POST", "/v1/containers/{id}/attach", s.attachContainer},
		{"GET", "/v1/containers/{id}/grants", s.containerGrants},
		{"POST", "/v1/containers/{id}/revoke", s.revokeGrant},
		{"GET", "/v1/images", s.listImages},
		{"GET", "/v1/images/{ref...}", s.inspectImage},
		{"DELETE", "/v1/images/{ref...}", s.removeImage},
		{"GET", "/v1/volumes", s.listVolumes},
		{"POST", "/v1/volumes", s.createVolume},
		{"GET", "/v1/volumes/{name}", s.inspectVolume},
		{"DELETE", "/v1/volumes/{name}", s.removeVolume},
	}
	s.routes = append(s.routes, s.functionRoutes()...)
	s.routes = append(s.routes, s.tenantRoutes()...)
	s.routes = append(s.routes, s.factoryRoutes()...)
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	metricsRoute := Route{Method: "GET", Pattern: "/metrics"}
	metricsRoute.handler = s.metrics.serveMetrics
	s.routes = append(s.routes, metricsRoute)
	s.mux.Handle("GET /metrics", s.wrap(metricsRoute))
	return s
}

// Routes lists every endpoint the server answers.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// SetReady makes /v1/ready answer 200.
func (s *Server) SetReady() { s.ready.Store(true) }

// ServeHTTP answers one request. Unknown paths and methods get an
// ErrorBody like every other error.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// The mux's own 404 or 405 (with its Allow header), as JSON.
		rec := &statusRecorder{ResponseWriter: discardBody{w}}
		h.ServeHTTP(rec, r)
		code, status := CodeNotFound, http.StatusNotFound
		if rec.status == http.StatusMethodNotAllowed {
			code, status = CodeMethodNotAllowed, http.StatusMethodNotAllowed
		}
		s.metrics.request("unmatched", status)
		writeJSON(w, status, ErrorBody{Error: r.Method + " " + r.URL.Path + ": " + http.StatusText(status), Code: code})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// wrap turns a handler that returns its error into an http.Handler that
// answers the error as an ErrorBody, logs the request and counts it.
func (s *Server) wrap(rt Route) http.Handler {
	create := rt.Method == "POST" && (rt.Pattern == "/v1/containers" || rt.Pattern == "/v1/volumes" || rt.Pattern == "/v1/functions" || rt.Pattern == "/v1/tenants" || rt.Pattern == "/v1/factories")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		r.Body = timedBody(w, r, s.BodyTimeout)
		r, err := s.authorize(rt, r)
		if err == nil {
			err = rt.handler(rec, r)
		}
		if err != nil {
			status, code := classify(err, create)
			if errors.Is(err, errTooLarge) {
				status, code = http.StatusRequestEntityTooLarge, CodeTooLarge
			}
			if errors.Is(err, errBodyTimeout) {
				status, code = http.StatusRequestTimeout, CodeTimeout
			}
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				status, code = http.StatusServiceUnavailable, CodeInternal
			}
			if rec.status != 0 {
				// The status line is out (a stream): end it with the error.
				_, _, errw := newFrameWriters(rec)
				b, _ := json.Marshal(ErrorBody{Error: err.Error(), Code: code})
				errw.Write(b)
			} else {
				writeJSON(rec, status, ErrorBody{Error: err.Error(), Code: code})
			}
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.metrics.request(rt.Method+" "+rt.Pattern, rec.status)
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start)}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		level := slog.LevelInfo
		if r.Method == "GET" && err == nil {
			level = slog.LevelDebug // listings and scrapes would drown the rest
		}
		s.log.Log(r.Context(), level, "request", attrs...)
	})
}

// statusRecorder remembers the status a handler wrote, and passes
// flushes on (log streams need them).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// discardBody keeps headers and drops the body, for the mux's plain-text
// errors.
type discardBody struct{ http.ResponseWriter }

func (d discardBody) Write(p []byte) (int, error) { return len(p), nil }
func (d discardBody) WriteHeader(int)             {}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
