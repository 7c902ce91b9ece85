//go:build linux && (amd64 || arm64)

package netsvc

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// Costs of a trapped call, against the same call in an unfiltered child.
// Each benchmark starts a child (timer stopped), then times b.N calls made by
// the child; ns/op includes the child's loop (socket and close around a
// timed connect), and p50-µs/mean-µs are the child's own timings of the call
// alone.
//
//	go test ./services/netsvc/ -run '^$' -bench . -benchtime 2s -count 5
func BenchmarkSocket(b *testing.B) {
	b.Run("trapped", func(b *testing.B) { benchCalls(b, "socket", true) })
	b.Run("plain", func(b *testing.B) { benchCalls(b, "socket", false) })
}

func BenchmarkConnect(b *testing.B) {
	b.Run("trapped", func(b *testing.B) { benchCalls(b, "connect", true) })
	b.Run("plain", func(b *testing.B) { benchCalls(b, "connect", false) })
	b.Run("denied", func(b *testing.B) { benchCalls(b, "connect-denied", true) })
}

func BenchmarkSendtoUDP(b *testing.B) {
	b.Run("trapped", func(b *testing.B) { benchCalls(b, "sendto", true) })
	b.Run("plain", func(b *testing.B) { benchCalls(b, "sendto", false) })
}

func benchCalls(b *testing.B, kind string, filtered bool) {
	needRoot(b)
	b.StopTimer()
	ln := listenCounting(b)
	udp := listenUDP(b)
	port := ln.port()
	switch kind {
	case "connect-denied":
		port = freePort(b, "tcp")
	case "sendto":
		port = udp.port()
	}
	g := &testGrants{egress: []egressRule{
		host32("127.0.0.1", ln.port()),
		{proto: ProtoUDP, prefix: netip.MustParsePrefix("127.0.0.1/32"), port: uint16(udp.port())},
	}}
	o := childOpts{grants: g, noFilter: !filtered}
	c := startChild(b, "bench", o, kind, strconv.Itoa(port))
	c.expect("ready")
	b.StartTimer()
	c.send(strconv.Itoa(b.N))
	res := c.line()
	b.StopTimer()
	p50, mean, _ := strings.Cut(res, " ")
	b.ReportMetric(ns(p50)/1e3, "p50-µs")
	b.ReportMetric(ns(mean)/1e3, "mean-µs")
	c.expect("ready")
	c.send("quit")
	c.finish()
}

func ns(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// BenchmarkBulkTCP: a bulk transfer over a socket the child got from a
// trapped socket() and connect() (injected) against a plain child. The data
// path (write) is not trapped, so the two should match.
//
//	go test ./services/netsvc/ -run '^$' -bench BulkTCP -benchtime 2048x -count 5
//
// The sendmsg variants write with sendmsg instead, which the filter traps on
// every call (the service copies the data and sends it itself).
func BenchmarkBulkTCP(b *testing.B) {
	b.Run("injected", func(b *testing.B) { benchBulk(b, true, "write") })
	b.Run("plain", func(b *testing.B) { benchBulk(b, false, "write") })
	b.Run("injected-sendmsg", func(b *testing.B) { benchBulk(b, true, "sendmsg") })
	b.Run("plain-sendmsg", func(b *testing.B) { benchBulk(b, false, "sendmsg") })
}

func benchBulk(b *testing.B, filtered bool, how string) {
	needRoot(b)
	b.StopTimer()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, conn)
		conn.Close()
	}()
	port := l.Addr().(*net.TCPAddr).Port
	g := &testGrants{egress: []egressRule{host32("127.0.0.1", port)}}
	c := startChild(b, "bulk", childOpts{grants: g, noFilter: !filtered}, strconv.Itoa(port), how)
	c.expect("ready")
	b.SetBytes(1 << 20)
	b.StartTimer()
	c.send(strconv.Itoa(b.N))
	res := c.line()
	b.StopTimer()
	b.ReportMetric(float64(b.N)*(1<<20)*8/ns(res), "Gbit/s")
	c.finish()
}
