package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// The network benchmark's wire protocol. A connection starts with one mode
// byte from the client:
//
//   - ModeSink: the client streams bytes until it shuts down its write
//     side; the server reads and discards them, then writes the number of
//     bytes it read after the mode byte as 8 bytes, big-endian, and closes.
//   - ModeEcho: the client sends fixed EchoSize-byte requests; the server
//     echoes each one whole, until the client shuts down its write side.
const (
	ModeSink = 'S'
	ModeEcho = 'R'
	// EchoSize is the size of one request (and reply) in ModeEcho.
	EchoSize = 64
)

// sinkBufSize is the server's read buffer and the default size of the
// client's writes.
const sinkBufSize = 128 << 10

// NetServer listens for TCP on addr (as net.Listen does: ":8080",
// "127.0.0.1:9000") and serves the benchmark protocol until ctx is done. It
// returns the error that ended listening, or nil when ctx ended it. This is
// the body of the hidden `oak _netserver` command that the network benchmark
// runs in each variant.
func NetServer(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("netserver: %w", err)
	}
	return ServeNet(ctx, ln)
}

// ServeNet serves the benchmark protocol on ln until ctx is done, then
// closes ln and waits for the connections it serves to end (it closes
// them). A connection that sends an unknown mode byte is closed. A failure
// of one connection is not a failure of the server; ServeNet returns only
// the error that ended Accept, or nil when ctx ended it.
func ServeNet(ctx context.Context, ln net.Listener) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			ln.Close()
			return fmt.Errorf("netserver: accept: %w", err)
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			return nil
		}
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// serveConn serves one connection and closes it.
func serveConn(c net.Conn) error {
	defer c.Close()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return err
	}
	switch mode[0] {
	case ModeSink:
		return serveSink(c)
	case ModeEcho:
		return serveEcho(c)
	}
	return fmt.Errorf("unknown mode %q", mode[0])
}

func serveSink(c net.Conn) error {
	buf := make([]byte, sinkBufSize)
	var n uint64
	for {
		k, err := c.Read(buf)
		n += uint64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], n)
	_, err := c.Write(out[:])
	return err
}

func serveEcho(c net.Conn) error {
	var buf [EchoSize]byte
	for {
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if _, err := c.Write(buf[:]); err != nil {
			return err
		}
	}
}

// sinkResult is what one throughput run measured.
type sinkResult struct {
	// Bytes is the sum of the counts the server reported, which the
	// client checked against what it wrote.
	Bytes int64
	// Elapsed runs from the moment every stream was connected and started
	// writing to the moment the last count came back.
	Elapsed time.Duration
}

// Gbps is the throughput in Gbit/s (10⁹ bits per second).
func (r sinkResult) Gbps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e9
}

// sinkRun opens streams ModeSink connections to addr, then has each write
// writeSize-byte buffers for d, shut down its write side and read back the
// server's count. It fails if any stream fails, or if a count differs from
// what that stream wrote.
func sinkRun(ctx context.Context, addr string, streams int, d time.Duration, writeSize int) (sinkResult, error) {
	if streams < 1 || writeSize < 1 || d <= 0 {
		return sinkResult{}, fmt.Errorf("sink run: %d streams, %d-byte writes, %v: all must be positive", streams, writeSize, d)
	}
	var dialer net.Dialer
	conns := make([]*net.TCPConn, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range streams {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return sinkResult{}, fmt.Errorf("sink run: stream %d: %w", i+1, err)
		}
		conns = append(conns, c.(*net.TCPConn))
		if _, err := c.Write([]byte{ModeSink}); err != nil {
			return sinkResult{}, fmt.Errorf("sink run: stream %d: %w", i+1, err)
		}
	}
	// Cancelling ctx ends every stream at once.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stop()

	buf := make([]byte, writeSize)
	counts := make([]int64, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i, c := range conns {
		wg.Go(func() { counts[i], errs[i] = sinkStream(c, buf, end) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return sinkResult{}, err
	}
	var total int64
	for i := range conns {
		if errs[i] != nil {
			return sinkResult{}, fmt.Errorf("sink run: stream %d of %d: %w", i+1, streams, errs[i])
		}
		total += counts[i]
	}
	return sinkResult{Bytes: total, Elapsed: elapsed}, nil
}

// sinkStream writes buf to c until end, then shuts down the write side and
// reads the server's count, which must equal what was written.
func sinkStream(c *net.TCPConn, buf []byte, end time.Time) (int64, error) {
	if err := c.SetWriteDeadline(end); err != nil {
		return 0, err
	}
	var wrote int64
	for {
		n, err := c.Write(buf)
		wrote += int64(n)
		if errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(end) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, err
	}
	if err := c.SetReadDeadline(time.Now().Add(countTimeout)); err != nil {
		return 0, err
	}
	var out [8]byte
	if _, err := io.ReadFull(c, out[:]); err != nil {
		return 0, fmt.Errorf("reading the server's count: %w", err)
	}
	got := int64(binary.BigEndian.Uint64(out[:]))
	if got != wrote {
		return 0, fmt.Errorf("server counted %d bytes, client wrote %d", got, wrote)
	}
	return got, nil
}

// countTimeout bounds the wait for the server's count once the client has
// stopped writing: the server still has to drain the socket buffers.
const countTimeout = 30 * time.Second

// echoRun opens one ModeEcho connection to addr and makes round trips of
// EchoSize bytes, each timed from before the write to after the whole reply
// was read, until it has made count of them or d has passed (whichever is
// first; at least one). It checks that every reply is the request it sent.
func echoRun(ctx context.Context, addr string, count int, d time.Duration) ([]time.Duration, error) {
	if count < 1 || d <= 0 {
		return nil, fmt.Errorf("echo run: %d round trips, %v: both must be positive", count, d)
	}
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo run: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write([]byte{ModeEcho}); err != nil {
		return nil, fmt.Errorf("echo run: %w", err)
	}
	var req, resp [EchoSize]byte
	rtts := make([]time.Duration, 0, min(count, 1<<16))
	end := time.Now().Add(d)
	for i := range count {
		binary.BigEndian.PutUint64(req[:], uint64(i))
		t0 := time.Now()
		if _, err := c.Write(req[:]); err != nil {
			return nil, echoErr(ctx, i, err)
		}
		if _, err := io.ReadFull(c, resp[:]); err != nil {
			return nil, echoErr(ctx, i, err)
		}
		t1 := time.Now()
		if !bytes.Equal(req[:], resp[:]) {
			return nil, fmt.Errorf("echo run: round trip %d: reply differs from the request", i+1)
		}
		rtts = append(rtts, t1.Sub(t0))
		if !t1.Before(end) {
			break
		}
	}
	return rtts, nil
}

func echoErr(ctx context.Context, i int, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("echo run: round trip %d: %w", i+1, err)
}

// waitServer dials addr until one echo round trip succeeds or timeout
// passes. exited, if not nil, is asked between attempts whether the server
// is gone, so that a server that failed is reported at once.
func waitServer(ctx context.Context, addr string, timeout time.Duration, exited func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := echoRun(actx, addr, 1, time.Second)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
		if exited != nil {
			if err := exited(ctx); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server at %s not answering after %v: %w", addr, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}
