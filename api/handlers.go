package api

import (
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/oak-engine/oak/engine"
)

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"Status": "ok"})
	return nil
}

// readiness is 200 once the daemon serves its state root.
func (s *Server) readiness(w http.ResponseWriter, r *http.Request) error {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "starting", Code: CodeInternal})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"Status": "ready"})
	return nil
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[RunRequest](r.Body)
	if err != nil {
		return err
	}
	opts, err := runOptions(r, req)
	if err != nil {
		return err
	}
	start := time.Now()
	id, err := s.eng.RunDetached(opts)
	s.metrics.launched(time.Since(start), err)
	if err != nil {
		return err
	}
	s.log.Info("container started", "id", id, "image", opts.Image)
	writeJSON(w, http.StatusCreated, Created{Id: id})
	return nil
}

// listContainers lists the running containers, or with all=1 every one,
// newest first; filter=KEY=VALUE (repeated) selects as oak ps --filter.
func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL, "all", "filter")
	all := q.bool("all")
	if q.err != nil {
		return q.err
	}
	cs, err := s.containersFor(r, q.strings("filter"))
	if err != nil {
		return err
	}
	out := []*engine.ContainerInfo{}
	for _, c := range cs {
		if all || c.State.Running || c.State.Restarting {
			out = append(out, c)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	c, err := s.eng.InspectContainer(r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, callerOf(r).shown(c))
	return nil
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL, "force")
	force := q.bool("force")
	if q.err != nil {
		return q.err
	}
	if err := s.eng.Remove(r.PathValue("id"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	if err := s.eng.Start(r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopParams reads t (seconds before SIGKILL, default 10) and signal (the
// first signal; absent: the container's stop signal).
func stopParams(r *http.Request) (syscall.Signal, time.Duration, error) {
	q := parseQuery(r.URL, "t", "signal")
	secs := q.int("t", int(engine.DefaultStopTimeout/time.Second))
	if q.err != nil {
		return 0, 0, q.err
	}
	if secs < 0 {
		return 0, 0, &FieldError{"t", fmt.Sprintf("%d: want seconds, 0 or more", secs)}
	}
	var sig syscall.Signal
	if s := q.string("signal"); s != "" {
		var err error
		if sig, err = engine.ParseSignal(s); err != nil {
			return 0, 0, &FieldError{"signal", err.Error()}
		}
	}
	return sig, time.Duration(secs) * time.Second, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	sig, timeout, err := stopParams(r)
	if err != nil {
		return err
	}
	code, err := s.eng.Stop(r.PathValue("id"), sig, timeout)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ExitStatus{StatusCode: code})
	return nil
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	sig, timeout, err := stopParams(r)
	if err != nil {
		return err
	}
	if err := s.eng.Restart(r.PathValue("id"), sig, timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// killContainer sends signal (default KILL) to the container.
func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL, "signal")
	name := q.string("signal")
	if q.err != nil {
		return q.err
	}
	sig := syscall.SIGKILL
	if name != "" {
		var err error
		if sig, err = engine.ParseSignal(name); err != nil {
			return &FieldError{"signal", err.Error()}
		}
	}
	if err := s.eng.Kill(r.PathValue("id"), sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// waitContainer answers once the container is not running, with its exit
// status.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	code, err := s.eng.Wait(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ExitStatus{StatusCode: code})
	return nil
}

// containerLogs streams the container's log as frames (see stream.go):
// follow=1 goes on until it exits, tail=N the last N lines (-1: all),
// since=UNIX-NANOSECONDS, timestamps=1.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL, "follow", "tail", "since", "timestamps")
	opts := engine.LogsOptions{Follow: q.bool("follow"), Tail: q.int("tail", -1), Timestamps: q.bool("timestamps")}
	since := q.int("since", 0)
	if q.err != nil {
		return q.err
	}
	if opts.Tail < -1 {
		return &FieldError{"tail", "want a number of lines, or -1 for all"}
	}
	if since != 0 {
		opts.Since = time.Unix(0, int64(since)).UTC()
	}
	id := r.PathValue("id")
	// Refuse an unknown container with a status, before the stream starts.
	if _, err := s.eng.InspectContainer(id); err != nil {
		return err
	}
	w.Header().Set("Content-Type", StreamContentType)
	w.WriteHeader(http.StatusOK)
	stdout, stderr, _ := newFrameWriters(w)
	return s.eng.Logs(r.Context(), id, opts, stdout, stderr)
}

func (s *Server) containerGrants(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	gs, err := s.eng.Grants(r.PathValue("id"))
	if err != nil {
		return err
	}
	if gs == nil {
		gs = []string{}
	}
	writeJSON(w, http.StatusOK, gs)
	return nil
}

// RevokeRequest is the body of POST /v1/containers/{id}/revoke: a grant
// as oak grants lists it.
type RevokeRequest struct {
	Grant string
}

func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[RevokeRequest](r.Body)
	if err != nil {
		return err
	}
	if req.Grant == "" {
		return &FieldError{"Grant", "required"}
	}
	if err := s.eng.Revoke(r.PathValue("id"), req.Grant); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	is, err := s.eng.ListImages()
	if err != nil {
		return err
	}
	if is == nil {
		is = []*engine.ImageInfo{}
	}
	writeJSON(w, http.StatusOK, is)
	return nil
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	i, err := s.eng.InspectImage(r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, i)
	return nil
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	if err := s.eng.RemoveImage(r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	vs, err := s.eng.ListVolumes()
	if err == nil {
		vs, err = s.volumesFor(r, vs)
	}
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []*engine.VolumeInfo{}
	}
	writeJSON(w, http.StatusOK, vs)
	return nil
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	req, err := decodeBody[VolumeCreate](r.Body)
	if err != nil {
		return err
	}
	if req.Name == "" {
		return &FieldError{"Name", "required"}
	}
	if req.Size <= 0 {
		return &FieldError{"Size", "want bytes, more than 0"}
	}
	o := engine.VolumeOptions{Sparse: req.Sparse}
	if req.Owner != nil {
		o.Owner = &engine.VolumeOwner{UID: req.Owner.UID, GID: req.Owner.GID}
	}
	v, err := s.createVolumeFor(r, req.Name, req.Size, o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	v, err := s.eng.InspectVolume(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	if err := parseQuery(r.URL).err; err != nil {
		return err
	}
	if err := s.eng.RemoveVolume(r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
