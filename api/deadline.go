package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultBodyTimeout bounds the time a client may take to send a request
// body. The daemon has no overall read timeout, because streams (logs -f,
// wait, exec) last as long as the container, so without this a client that
// sends its headers and then trickles or withholds its body would hold a
// connection, a goroutine and a descriptor of the daemon for ever.
const DefaultBodyTimeout = 10 * time.Second

// errBodyTimeout is a body not received within the server's BodyTimeout.
var errBodyTimeout = errors.New("request body not received in time")

// deadlineBody is a request body with a read deadline on the connection,
// set when the handler starts and lifted as soon as the body has been read
// to its end: past the body, a handler's long wait must not be cut short,
// as the server cancels a request whose connection read fails. A body not
// read to its end keeps the deadline, so that the server's own reading of
// the rest (before it answers) is bounded too.
type deadlineBody struct {
	io.ReadCloser
	ctl    *http.ResponseController
	lifted bool
}

// timedBody arms the deadline for r's body, if it has one.
func timedBody(w http.ResponseWriter, r *http.Request, d time.Duration) io.ReadCloser {
	if r.Body == nil || r.Body == http.NoBody || d <= 0 {
		return r.Body
	}
	ctl := http.NewResponseController(w)
	if ctl.SetReadDeadline(time.Now().Add(d)) != nil {
		return r.Body // not a connection that has deadlines (a test recorder)
	}
	return &deadlineBody{ReadCloser: r.Body, ctl: ctl}
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.lift()
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays: the server reads what is left of the body
		// before it answers, and must not wait for it either.
		err = errBodyTimeout
	}
	return n, err
}

func (b *deadlineBody) lift() {
	if !b.lifted {
		b.lifted = true
		b.ctl.SetReadDeadline(time.Time{})
	}
}
