package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oak-engine/oak/engine"
)

// fakeEngine answers like the engine for one container, "web", running,
// and records what it was asked.
type fakeEngine struct {
	mu    sync.Mutex
	calls []string
	run   engine.RunOptions
	// waiting, if set, is closed when a Wait starts.
	waiting chan struct{}
}

func (f *fakeEngine) called(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
}

func (f *fakeEngine) find(ref string) error {
	if ref != "web" {
		return fmt.Errorf("%w: %s", engine.ErrNoSuchContainer, ref)
	}
	return nil
}

func (f *fakeEngine) RunDetached(o engine.RunOptions) (string, error) {
	f.called("run %s", o.Image)
	f.mu.Lock()
	f.run = o
	f.mu.Unlock()
	if o.Image == "missing-command" {
		return "", fmt.Errorf("run: %w: nosuch", engine.ErrCommandNotFound)
	}
	return "0123456789abcdef", nil
}

func (f *fakeEngine) ListContainers(engine.Filter) ([]*engine.ContainerInfo, error) {
	return []*engine.ContainerInfo{
		{Id: "1", Name: "web", State: engine.ContainerState{Status: engine.StatusRunning, Running: true}},
		{Id: "2", Name: "old", State: engine.ContainerState{Status: engine.StatusExited}},
	}, nil
}

func (f *fakeEngine) InspectContainer(ref string) (*engine.ContainerInfo, error) {
	if err := f.find(ref); err != nil {
		return nil, err
	}
	return &engine.ContainerInfo{Id: "1", Name: "web"}, nil
}

func (f *fakeEngine) Start(ref string) error {
	if err := f.find(ref); err != nil {
		return err
	}
	return nil
}

func (f *fakeEngine) Stop(ref string, sig syscall.Signal, t time.Duration) (int, error) {
	f.called("stop %s %d %v", ref, sig, t)
	return 143, f.find(ref)
}

func (f *fakeEngine) Restart(ref string, sig syscall.Signal, t time.Duration) error {
	return f.find(ref)
}

func (f *fakeEngine) Kill(ref string, sig syscall.Signal) error {
	f.called("kill %s %d", ref, sig)
	if err := f.find(ref); err != nil {
		return err
	}
	if sig == syscall.SIGHUP {
		return fmt.Errorf("container %s: not running (exited)", ref)
	}
	return nil
}

func (f *fakeEngine) Wait(ctx context.Context, ref string) (int, error) {
	if err := f.find(ref); err != nil {
		return 0, err
	}
	if f.waiting != nil {
		close(f.waiting)
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

func (f *fakeEngine) Remove(ref string, force bool) error {
	f.called("rm %s %v", ref, force)
	return f.find(ref)
}

func (f *fakeEngine) Logs(ctx context.Context, ref string, o engine.LogsOptions, stdout, stderr io.Writer) error {
	if err := f.find(ref); err != nil {
		return err
	}
	io.WriteString(stdout, "out 1\n")
	io.WriteString(stderr, "err 1\n")
	io.WriteString(stdout, "out 2\n")
	if o.Follow {
		return errors.New("log vanished")
	}
	return nil
}

// Exec writes its arguments to stdout and what it reads from stdin to
// stderr, then waits for one signal and exits with its number.
func (f *fakeEngine) Exec(ref string, o engine.ExecOptions, stdin, stdout, stderr *os.File, sigs <-chan os.Signal) (int, error) {
	if err := f.find(ref); err != nil {
		return 0, err
	}
	if o.Args[0] == "fail" {
		return 0, fmt.Errorf("exec %s: container is exited, not running", ref)
	}
	fmt.Fprintf(stdout, "%s tty=%v\n", strings.Join(o.Args, " "), o.TTY)
	io.Copy(stderr, stdin)
	s := <-sigs
	return 128 + int(s.(syscall.Signal)), nil
}

func (f *fakeEngine) Grants(ref string) ([]string, error) { return nil, f.find(ref) }
func (f *fakeEngine) Revoke(ref, grant string) error {
	f.called("revoke %s %s", ref, grant)
	return f.find(ref)
}
func (f *fakeEngine) ListImages() ([]*engine.ImageInfo, error) { return nil, nil }
func (f *fakeEngine) InspectImage(ref string) (*engine.ImageInfo, error) {
	return &engine.ImageInfo{RepoTags: []string{ref}}, nil
}
func (f *fakeEngine) RemoveImage(ref string) error { return nil }
func (f *fakeEngine) ListVolumes() ([]*engine.VolumeInfo, error) {
	return nil, nil
}
func (f *fakeEngine) InspectVolume(name string) (*engine.VolumeInfo, error) {
	return &engine.VolumeInfo{Name: name}, nil
}
func (f *fakeEngine) CreateVolume(name string, size int64, o engine.VolumeOptions) (*engine.VolumeInfo, error) {
	f.called("volume %s %d", name, size)
	return &engine.VolumeInfo{Name: name, Size: size}, nil
}
func (f *fakeEngine) RemoveVolume(name string) error { return nil }

func newTestServer(t *testing.T) (*Server, *fakeEngine) {
	f := &fakeEngine{}
	s := NewServer(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetReady()
	return s, f
}

func do(s *Server, method, target, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, asRoot(httptest.NewRequest(method, target, rd)))
	return w
}

// TestStatusesAndCodes pins the status and error code of each kind of
// answer, and that an error names the field it is about.
func TestStatusesAndCodes(t *testing.T) {
	s, _ := newTestServer(t)
	for _, tc := range []struct {
		method, target, body string
		status               int
		code                 string // of an error answer
		inError              string // in its message
	}{
		{"GET", "/v1/health", "", 200, "", ""},
		{"GET", "/v1/ready", "", 200, "", ""},
		{"POST", "/v1/containers", `{"Image":"demo"}`, 201, "", ""},
		{"POST", "/v1/containers", `{"Image":"demo","Memroy":5}`, 400, CodeBadRequest, "Memroy"},
		{"POST", "/v1/containers", `{"Image":"demo","Memory":"1g"}`, 400, CodeBadRequest, "Memory"},
		{"POST", "/v1/containers", `{"Image":"demo"} {}`, 400, CodeBadRequest, "more"},
		{"POST", "/v1/containers", ``, 400, CodeBadRequest, "empty"},
		{"POST", "/v1/containers", `{"Cmd":["x"]}`, 400, CodeBadRequest, "Image"},
		{"POST", "/v1/containers", `{"Image":"./rootfs"}`, 400, CodeBadRequest, "absolute"},
		{"POST", "/v1/containers", `{"Image":"demo","NanoCpus":1}`, 400, CodeBadRequest, "NanoCpus"},
		{"POST", "/v1/containers", `{"Image":"demo","RestartPolicy":"sometimes"}`, 400, CodeBadRequest, "RestartPolicy"},
		{"POST", "/v1/containers", `{"Image":"demo","PidsLimit":1}`, 400, CodeBadRequest, "PidsLimit"},
		{"POST", "/v1/containers", `{"Image":"missing-command"}`, 400, CodeCommandNotFound, "nosuch"},
		{"POST", "/v1/containers?x=1", `{"Image":"demo"}`, 400, CodeBadRequest, "x"},
		{"POST", "/v1/containers", `{"Image":"demo","Env":["` + strings.Repeat("a", MaxBody) + `"]}`, 413, CodeTooLarge, "bytes"},
		{"GET", "/v1/containers", "", 200, "", ""},
		{"GET", "/v1/containers?all=maybe", "", 400, CodeBadRequest, "all"},
		{"GET", "/v1/containers?all=1&all=0", "", 400, CodeBadRequest, "more than once"},
		{"GET", "/v1/containers?filter=colour=red", "", 400, CodeBadRequest, "filter"},
		{"GET", "/v1/containers/web", "", 200, "", ""},
		{"GET", "/v1/containers/nosuch", "", 404, CodeNoSuchContainer, "nosuch"},
		{"DELETE", "/v1/containers/nosuch", "", 404, CodeNoSuchContainer, "nosuch"},
		{"DELETE", "/v1/containers/web?force=1", "", 204, "", ""},
		{"POST", "/v1/containers/web/stop?t=-1", "", 400, CodeBadRequest, "t"},
		{"POST", "/v1/containers/web/stop?signal=NOPE", "", 400, CodeBadRequest, "signal"},
		{"POST", "/v1/containers/web/stop?t=3&signal=INT", "", 200, "", ""},
		{"POST", "/v1/containers/web/kill?signal=HUP", "", 409, CodeRefused, "not running"},
		{"POST", "/v1/containers/web/kill", "", 204, "", ""},
		{"POST", "/v1/containers/web/start", "", 204, "", ""},
		{"POST", "/v1/containers/web/restart", "", 204, "", ""},
		{"POST", "/v1/containers/web/revoke", `{"Grant":"egress any"}`, 204, "", ""},
		{"POST", "/v1/containers/web/revoke", `{}`, 400, CodeBadRequest, "Grant"},
		{"GET", "/v1/containers/web/grants", "", 200, "", ""},
		{"GET", "/v1/containers/nosuch/logs", "", 404, CodeNoSuchContainer, "nosuch"},
		{"GET", "/v1/containers/web/logs?tail=x", "", 400, CodeBadRequest, "tail"},
		{"GET", "/v1/images/docker.io/library/alpine:3", "", 200, "", ""},
		{"POST", "/v1/volumes", `{"Name":"v","Size":0}`, 400, CodeBadRequest, "Size"},
		{"POST", "/v1/volumes", `{"Name":"v","Size":1048576}`, 201, "", ""},
		{"GET", "/v1/nosuch", "", 404, CodeNotFound, "/v1/nosuch"},
		{"PUT", "/v1/containers", "", 405, CodeMethodNotAllowed, "PUT"},
	} {
		w := do(s, tc.method, tc.target, tc.body)
		name := tc.method + " " + tc.target
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d: %s", name, w.Code, tc.status, w.Body)
			continue
		}
		if tc.code == "" {
			continue
		}
		var e ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Errorf("%s: error answer is not an ErrorBody: %v: %s", name, err, w.Body)
			continue
		}
		if e.Code != tc.code || !strings.Contains(e.Error, tc.inError) {
			t.Errorf("%s: error %+v, want code %s and a message naming %q", name, e, tc.code, tc.inError)
		}
	}
}

// TestCreateMapsRequest checks that a request's fields reach the engine,
// and that what it leaves out takes Oak's defaults.
func TestCreateMapsRequest(t *testing.T) {
	s, f := newTestServer(t)
	w := do(s, "POST", "/v1/containers", `{"Image":"/srv/rootfs","Cmd":["sh","-c","true"],"Name":"a",
		"PidsLimit":64,"NanoCpus":500000000,"RestartPolicy":"on-failure:3","Entrypoint":[],
		"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],"Labels":{"k":"v"},"Tty":true}`)
	if w.Code != 201 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	o := f.run
	switch {
	case o.Image != "/srv/rootfs" || strings.Join(o.Args, " ") != "sh -c true" || o.Name != "a":
		t.Errorf("image, command or name lost: %+v", o)
	case o.Limits.Pids != 64 || o.Limits.CPUMilli != 500:
		t.Errorf("limits %+v, want 64 pids and 500 thousandths of a CPU", o.Limits)
	case o.Limits.MemoryBytes != engine.DefaultMemoryBytes:
		t.Errorf("memory %d, want the default %d when left out", o.Limits.MemoryBytes, engine.DefaultMemoryBytes)
	case o.Log != engine.DefaultLogOptions():
		t.Errorf("log %+v, want the defaults", o.Log)
	case o.Restart.Name != "on-failure" || o.Restart.MaxRetries != 3:
		t.Errorf("restart %+v", o.Restart)
	case o.Entrypoint == nil || len(o.Entrypoint) != 0:
		t.Errorf("entrypoint %#v, want an empty one (replace the image's with none)", o.Entrypoint)
	case len(o.Ulimits) != 1 || o.Ulimits[0] != (engine.Ulimit{Name: "nofile", Soft: 10, Hard: 20}):
		t.Errorf("ulimits %+v", o.Ulimits)
	case o.Labels["k"] != "v" || !o.TTY:
		t.Errorf("labels or tty lost: %+v", o)
	}
	var c Created
	if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil || c.Id != "0123456789abcdef" {
		t.Errorf("answer %s, want the id", w.Body)
	}
}

// TestRunRequestRoundTrip: what the CLI resolved its flags to reaches the
// engine unchanged through NewRunRequest and RunOptions.
func TestRunRequestRoundTrip(t *testing.T) {
	o := engine.RunOptions{Image: "demo", Args: []string{"echo", "hi"}, Name: "n", Env: []string{"A=1"},
		Workdir: "/tmp", AutoRemove: true, Factory: "ci", Labels: map[string]string{"k": "v"}, Entrypoint: []string{},
		PublishAll: true, TTY: true, Restart: engine.RestartPolicy{Name: "on-failure", MaxRetries: 2}, Volumes: []string{"v:/data:ro"}, Tmpfs: []string{"/run"},
		Publish: []string{"8080:80"}, Egress: []string{"any"}, ReadOnly: true, User: "1:2",
		Names:   engine.NameOptions{Hostname: "h", DNS: []string{"1.1.1.1"}, AddHosts: []string{"x:1.2.3.4"}},
		Log:     engine.LogOptions{MaxSize: 0, MaxFile: 1},
		Ulimits: []engine.Ulimit{{Name: "nofile", Soft: -1, Hard: -1}}, Tenant: "t", Spawn: true, Parent: "p", SpawnDisk: 64 << 20}
	o.Limits.MemoryBytes, o.Limits.Pids, o.Limits.CPUMilli, o.Limits.TmpfsBytes, o.Limits.WritableBytes = 0, 0, 250, 4096, 8<<20
	// Every field is set, so that a field the request does not carry
	// (as Factory once was not) fails the round trip.
	for i, v := 0, reflect.ValueOf(o); i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("RunOptions.%s is not set in this test: set it so the round trip covers it", v.Type().Field(i).Name)
		}
	}
	b, err := json.Marshal(NewRunRequest(o))
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeJSON[RunRequest](b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	got, err := r.RunOptions()
	if err != nil {
		t.Fatal(err)
	}
	// The tenant, and the parent of a sub-container, are the caller's,
	// from its credentials (auth.go): no request carries them.
	if got.Tenant != "" || got.Parent != "" {
		t.Errorf("a request carried tenant %q or parent %q", got.Tenant, got.Parent)
	}
	got.Tenant, got.Parent = o.Tenant, o.Parent
	if a, b := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", o); a != b {
		t.Errorf("round trip changed the request:\n got %s\nwant %s", a, b)
	}
}

// TestLogStream checks the framing: both streams in order, then the error
// that cut a follow short.
func TestLogStream(t *testing.T) {
	s, _ := newTestServer(t)
	w := do(s, "GET", "/v1/containers/web/logs?follow=1", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != StreamContentType {
		t.Fatalf("status %d, type %q", w.Code, w.Header().Get("Content-Type"))
	}
	var out, errs bytes.Buffer
	err := readFrames(w.Body, &out, &errs)
	if out.String() != "out 1\nout 2\n" || errs.String() != "err 1\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errs.String())
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.Message != "log vanished" {
		t.Errorf("error %v, want the engine's error from the error frame", err)
	}
	w = do(s, "GET", "/v1/containers/web/logs", "")
	out.Reset()
	errs.Reset()
	if err := readFrames(w.Body, &out, &errs); err != nil || out.String() != "out 1\nout 2\n" {
		t.Errorf("without follow: %v, stdout %q", err, out.String())
	}
}

// TestReadFramesRefusesBadFraming: a stream that is not framed is an
// error, not output.
func TestReadFramesRefusesBadFraming(t *testing.T) {
	for _, in := range []string{
		"\x09\x00\x00\x00\x00\x00\x00\x01x",   // unknown stream
		"\x01\x01\x00\x00\x00\x00\x00\x01x",   // non-zero padding
		"\x01\x00\x00\x00\x7f\xff\xff\xffxyz", // above maxFrame
		"\x01\x00\x00\x00\x00\x00\x00\x05ab",  // cut short
		"\x01\x00\x00",                        // header cut short
	} {
		if err := readFrames(strings.NewReader(in), io.Discard, io.Discard); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// TestErrorUnwrapsToEngineErrors: a client's error is errors.Is the
// engine error its code stands for, so the CLI's exit statuses hold over
// the API.
func TestErrorUnwrapsToEngineErrors(t *testing.T) {
	for code, want := range codeSentinels {
		if err := error(&Error{Code: code}); !errors.Is(err, want) {
			t.Errorf("code %s: not errors.Is %v", code, want)
		}
	}
	if errors.Is(&Error{Code: CodeRefused}, engine.ErrNoSuchContainer) {
		t.Error("a refusal unwraps to no such container")
	}
}

// TestMetrics checks that requests, launches and containers by state are
// counted as served.
func TestMetrics(t *testing.T) {
	s, _ := newTestServer(t)
	do(s, "POST", "/v1/containers", `{"Image":"demo"}`)
	do(s, "POST", "/v1/containers", `{"Image":"missing-command"}`)
	do(s, "GET", "/v1/containers/nosuch", "")
	w := do(s, "GET", "/metrics", "")
	body := w.Body.String()
	for _, want := range []string{
		`oak_launches_total{result="ok"} 1`,
		`oak_launches_total{result="failed"} 1`,
		`oak_launch_seconds_count 1`,
		`oak_api_requests_total{route="GET /v1/containers/{id}",code="404"} 1`,
		`oak_api_requests_total{route="POST /v1/containers",code="201"} 1`,
		`oak_containers{state="running"} 1`,
		`oak_containers{state="exited"} 1`,
		`oak_containers{state="broken"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestWaitEndsWithTheDaemon: a wait in flight ends when its context
// (the daemon's, at shutdown) does, with 503.
func TestWaitEndsWithTheDaemon(t *testing.T) {
	s, _ := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := asRoot(httptest.NewRequest("POST", "/v1/containers/web/wait", nil).WithContext(ctx))
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		s.ServeHTTP(w, r)
		close(done)
	}()
	cancel()
	<-done
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503: %s", w.Code, w.Body)
	}
}
