//go:build linux

// Network subcommands of the probe, for tests/integration/network_test.go.
//
// Addresses are IPv4 "IP:PORT"; abstract AF_UNIX names are written "@NAME".
// Servers print "listening PORT" as soon as they listen (or are bound, for
// UDP) so that the test knows when to connect. Every subcommand is
// bounded: after netTimeout the probe prints "err ETIMEDOUT" and exits
// (connect-race reports its counts instead), so a peer that never comes or
// a trapped call the sandbox never answers cannot hang a test.
//
// The calls are made with raw system calls (golang.org/x/sys/unix) on
// blocking sockets, so each is one trapped call for the network service,
// without the Go runtime's poller in between.
package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// netTimeout bounds every wait for a peer.
const netTimeout = 30 * time.Second

func init() {
	for name, c := range map[string]command{
		"connect":       {"IP:PORT [MSG] (TCP connect; write MSG if given)", doConnect},
		"bind":          {"tcp|udp PORT [IP] (socket and bind; IP default 0.0.0.0)", doBind},
		"listen":        {"PORT|- (socket, bind PORT unless -, ignore its result, listen: listen's answer)", doListen},
		"serve":         {"PORT N MSG (TCP: listen on 0.0.0.0:PORT, write \"MSG i\\n\" to each of N connections)", doServe},
		"serve-bytes":   {"PORT BYTES N (TCP: write BYTES bytes to each of N connections)", doServeBytes},
		"udp-recv":      {"PORT [IP [V6ONLY]] (bind IP:PORT, default 0.0.0.0, print \"got DATA\" for one datagram)", doUDPRecv},
		"udp-send":      {"IP:PORT MSG (sendto from an unbound UDP socket)", doUDPSend},
		"udp-connect":   {"IP:PORT (connect a UDP socket)", doUDPConnect},
		"unix-connect":  {"@NAME stream|dgram (connect one end of a socketpair to an abstract name; write x if it succeeds)", doUnixConnect},
		"unix-self":     {"@NAME (bind a datagram socketpair end to an abstract name, connect another to it: the control for unix-connect)", doUnixSelf},
		"unix-sendto":   {"@NAME (sendto an abstract name from a datagram socketpair end)", doUnixSendto},
		"connect-race":  {"ALLOWED DENIED N MS (connect to ALLOWED while another thread rewrites the address to DENIED)", doConnectRace},
		"revoke-check":  {"REVOKED OTHER (see doRevokeCheck)", doRevokeCheck},
		"socket-matrix": {"(socket() of AF_INET/AF_INET6 x STREAM/DGRAM/RAW and flag variants, one line each)", doSocketMatrix},
		"inet-bind":     {"tcp|udp IP PORT [V6ONLY] (bind IP:PORT, IPv4 or IPv6, after setting IPV6_V6ONLY to 0 or 1 if given; see doInetBind)", doInetBind},
		"serve-inet":    {"IP PORT V6ONLY|- N MSG (TCP server on IP:PORT of either family, else as serve)", doServeInet},
		"go-serve":      {"PORT N MSG (as serve, through Go's net.Listen(\"tcp\", \":PORT\"), which probes for IPv6 first)", doGoServe},
		"udp-reply":     {"IP:PORT [tamper] (sendto IP:PORT, then print \"got DATA\" per datagram until one says last; see doUDPReply)", doUDPReply},
	} {
		if _, dup := commands[name]; dup {
			panic("probe: subcommand " + name + " defined twice")
		}
		if name != "connect-race" {
			run := c.run
			c.run = func(args []string) error {
				armTimeout()
				return run(args)
			}
		}
		commands[name] = c
	}
}

// ---- helpers ----

// armTimeout makes the probe give up after netTimeout.
func armTimeout() {
	time.AfterFunc(netTimeout, func() {
		fmt.Println("err ETIMEDOUT")
		os.Exit(0)
	})
}

func inet4(s string) *unix.SockaddrInet4 {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || !ap.Addr().Is4() {
		die("bad IPv4 address %q", s)
	}
	return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
}

// inetAddr parses "IP:PORT" or "[IPV6]:PORT" into a socket family and address.
func inetAddr(s string) (int, unix.Sockaddr) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		die("bad address %q", s)
	}
	if ap.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}

func portArg(args []string, i int) int {
	if i >= len(args) {
		die("missing port")
	}
	return intArg(args, i, 0)
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func accept(fd int) (int, error) {
	for {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		return nfd, err
	}
}

// tcpListen makes a TCP socket listening on 0.0.0.0:port.
func tcpListen(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func tcpConnect(addr string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, inet4(addr)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func res(err error) string {
	if err == nil {
		return "ok"
	}
	return "err " + errName(err)
}

// ---- subcommands ----

func doConnect(args []string) error {
	fd, err := tcpConnect(strArg(args, 0, ""))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if len(args) > 1 {
		return writeAll(fd, []byte(args[1]))
	}
	return nil
}

func doBind(args []string) error {
	typ := unix.SOCK_STREAM
	switch strArg(args, 0, "") {
	case "tcp":
	case "udp":
		typ = unix.SOCK_DGRAM
	default:
		die("bind tcp|udp PORT [IP]")
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := inet4(strArg(args, 2, "0.0.0.0") + ":" + strconv.Itoa(portArg(args, 1)))
	return unix.Bind(fd, sa)
}

func doListen(args []string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if p := strArg(args, 0, "-"); p != "-" {
		unix.Bind(fd, &unix.SockaddrInet4{Port: portArg(args, 0)})
	}
	return unix.Listen(fd, 1)
}

func doServe(args []string) error {
	port, n, msg := portArg(args, 0), intArg(args, 1, 1), strArg(args, 2, "hello")
	l, err := tcpListen(port)
	if err != nil {
		return err
	}
	defer unix.Close(l)
	fmt.Printf("listening %d\n", port)
	for i := 1; i <= n; i++ {
		c, err := accept(l)
		if err != nil {
			return err
		}
		err = writeAll(c, []byte(fmt.Sprintf("%s %d\n", msg, i)))
		unix.Close(c)
		if err != nil {
			return err
		}
	}
	return nil
}

func doServeBytes(args []string) error {
	port, total, n := portArg(args, 0), intArg(args, 1, 0), intArg(args, 2, 1)
	l, err := tcpListen(port)
	if err != nil {
		return err
	}
	defer unix.Close(l)
	fmt.Printf("listening %d\n", port)
	buf := bytes.Repeat([]byte("oak-probe-bytes!"), 1<<14) // 256 KiB
	for i := 0; i < n; i++ {
		c, err := accept(l)
		if err != nil {
			return err
		}
		for left := total; left > 0 && err == nil; {
			k := min(left, len(buf))
			err = writeAll(c, buf[:k])
			left -= k
		}
		unix.Close(c)
		if err != nil {
			return err
		}
	}
	return nil
}

func doUDPRecv(args []string) error {
	port := portArg(args, 0)
	fd, err := inetSocket(unix.SOCK_DGRAM, strArg(args, 1, "0.0.0.0"), port, strArg(args, 2, "-"))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	fmt.Printf("listening %d\n", port)
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		fmt.Printf("got %s\n", buf[:n])
		return errInfo
	}
}

func doUDPSend(args []string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, []byte(strArg(args, 1, "x")), 0, inet4(strArg(args, 0, "")))
}

func doUDPConnect(args []string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, inet4(strArg(args, 0, "")))
}

func abstract(name string) *unix.SockaddrUnix {
	if !strings.HasPrefix(name, "@") {
		die("want an abstract name @NAME, have %q", name)
	}
	// x/sys/unix turns a leading @ into the abstract namespace's NUL.
	return &unix.SockaddrUnix{Name: name}
}

func doUnixConnect(args []string) error {
	typ := unix.SOCK_STREAM
	if strArg(args, 1, "stream") == "dgram" {
		typ = unix.SOCK_DGRAM
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := unix.Connect(fds[0], abstract(strArg(args, 0, ""))); err != nil {
		return err
	}
	// Connected to something: say so to whatever it is.
	_, err = unix.Write(fds[0], []byte("x"))
	return err
}

// doUnixSelf shows that the probe's abstract connect does reach a name that
// exists in the container's own network namespace: it binds one end of a
// datagram socketpair to NAME, connects an end of a second pair to NAME and
// sends a byte, which the first must receive.
func doUnixSelf(args []string) error {
	a, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(a[0])
	defer unix.Close(a[1])
	// A datagram end that has a peer receives only from it: dissolve the
	// pair first (connect AF_UNSPEC).
	var unspec [16]byte
	if _, _, e := syscall.Syscall(unix.SYS_CONNECT, uintptr(a[0]), uintptr(unsafe.Pointer(&unspec[0])), uintptr(len(unspec))); e != 0 {
		return e
	}
	if err := unix.Bind(a[0], abstract(strArg(args, 0, ""))); err != nil {
		return err
	}
	b, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(b[0])
	defer unix.Close(b[1])
	if err := unix.Connect(b[0], abstract(strArg(args, 0, ""))); err != nil {
		return err
	}
	if _, err := unix.Write(b[0], []byte("y")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	n, _, err := unix.Recvfrom(a[0], buf, unix.MSG_DONTWAIT)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "y" {
		return fmt.Errorf("received %q", buf[:n])
	}
	return nil
}

func doUnixSendto(args []string) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	return unix.Sendto(fds[0], []byte("x"), 0, abstract(strArg(args, 0, "")))
}

// doSocketMatrix tries socket() for AF_INET and AF_INET6 with every type
// a container could want, printing "FAMILY TYPE PROTO RESULT" per line.
func doSocketMatrix(args []string) error {
	types := []struct {
		name string
		typ  int
	}{
		{"STREAM", unix.SOCK_STREAM},
		{"DGRAM", unix.SOCK_DGRAM},
		{"RAW", unix.SOCK_RAW},
		{"SEQPACKET", unix.SOCK_SEQPACKET},
		{"STREAM|CLOEXEC", unix.SOCK_STREAM | unix.SOCK_CLOEXEC},
		{"DGRAM|NONBLOCK", unix.SOCK_DGRAM | unix.SOCK_NONBLOCK},
	}
	protos := map[string][]int{
		"STREAM": {0, unix.IPPROTO_TCP}, "DGRAM": {0, unix.IPPROTO_UDP, unix.IPPROTO_ICMP},
		"RAW": {unix.IPPROTO_RAW, unix.IPPROTO_ICMP, unix.IPPROTO_TCP}, "SEQPACKET": {0},
		"STREAM|CLOEXEC": {0}, "DGRAM|NONBLOCK": {0},
	}
	for _, fam := range []struct {
		name string
		fam  int
	}{{"AF_INET", unix.AF_INET}, {"AF_INET6", unix.AF_INET6}} {
		for _, t := range types {
			for _, p := range protos[t.name] {
				fd, err := unix.Socket(fam.fam, t.typ, p)
				if err == nil {
					unix.Close(fd)
				}
				fmt.Printf("%s %s %d %s\n", fam.name, t.name, p, res(err))
			}
		}
	}
	return errInfo
}

// doConnectRace connects to ALLOWED over and over on one OS thread while a
// second OS thread keeps rewriting the very sockaddr buffer the connect
// passes, between ALLOWED and DENIED. A sandbox that checked the address
// and then let the kernel read it again would now and then connect to
// DENIED. It prints one line:
//
//	connects N ok A refused R other O peer-denied D
//
// where A connects succeeded, R were refused with EACCES (the service read
// DENIED), O failed otherwise (the errnos follow), and D of the successful
// ones are connected to DENIED (getpeername).
func doConnectRace(args []string) error {
	allowed, denied := inet4(strArg(args, 0, "")), inet4(strArg(args, 1, ""))
	n, limit := intArg(args, 2, 10000), time.Duration(intArg(args, 3, 3000))*time.Millisecond
	enc := func(sa *unix.SockaddrInet4) (uint32, uint32) {
		var b [8]byte
		*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET // host order
		b[2], b[3] = byte(sa.Port>>8), byte(sa.Port)     // network order
		copy(b[4:], sa.Addr[:])
		return *(*uint32)(unsafe.Pointer(&b[0])), *(*uint32)(unsafe.Pointer(&b[4]))
	}
	a0, a1 := enc(allowed)
	d0, d1 := enc(denied)
	// struct sockaddr_in, 16 bytes, on the heap (never moved by Go's GC),
	// as two 32-bit words plus zero padding.
	buf := new([4]uint32)
	atomic.StoreUint32(&buf[0], a0)
	atomic.StoreUint32(&buf[1], a1)

	var stop atomic.Bool
	var spin, flips atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		for i := uint64(0); !stop.Load(); i++ {
			atomic.StoreUint32(&buf[0], d0)
			atomic.StoreUint32(&buf[1], d1)
			for j := uint64(0); j < i%64; j++ {
				spin.Add(1) // a varying dwell, up to a few hundred ns
			}
			atomic.StoreUint32(&buf[0], a0)
			atomic.StoreUint32(&buf[1], a1)
			for j := uint64(0); j < (i/7)%64; j++ {
				spin.Add(1)
			}
			flips.Add(1)
		}
	}()

	var tries, ok, refused, other, peerDenied atomic.Int64
	var errMu sync.Mutex
	errs := map[string]int{}
	report := func(prefix string) {
		errMu.Lock()
		var es []string
		for k, v := range errs {
			es = append(es, fmt.Sprintf("%s=%d", k, v))
		}
		errMu.Unlock()
		fmt.Printf("%sconnects %d ok %d refused %d other %d peer-denied %d flips %d %s\n", prefix,
			tries.Load(), ok.Load(), refused.Load(), other.Load(), peerDenied.Load(), flips.Load(), strings.Join(es, " "))
	}
	// A call the service never answers would hang the probe: report what
	// happened until then instead.
	time.AfterFunc(limit+15*time.Second, func() {
		report("stuck in a connect: ")
		os.Exit(0)
	})
	fail := func(name string) {
		other.Add(1)
		errMu.Lock()
		errs[name]++
		errMu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		deadline := time.Now().Add(limit)
		for ; tries.Load() < int64(n) && time.Now().Before(deadline); tries.Add(1) {
			fd, _, e := syscall.Syscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if e != 0 {
				fail("socket:" + errName(e))
				continue
			}
			_, _, e = syscall.Syscall(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(buf)), 16)
			switch e {
			case 0:
				ok.Add(1)
				if sa, err := unix.Getpeername(int(fd)); err == nil {
					if p, _ := sa.(*unix.SockaddrInet4); p != nil && p.Port == denied.Port && p.Addr == denied.Addr {
						peerDenied.Add(1)
					}
				}
			case unix.EACCES:
				refused.Add(1)
			default:
				fail(errName(e))
			}
			unix.Close(int(fd))
		}
	}()
	<-done
	stop.Store(true)
	wg.Wait()
	report("")
	return errInfo
}

// doRevokeCheck is the container's half of the revoke test. It connects to
// REVOKED (still granted then) and makes a second socket; it then waits for
// one byte on that connection, which the test sends after it revoked the
// grant, and reports, one line each:
//
//	connect-before RESULT          the connection made under the grant
//	connect-presocket RESULT       connect(REVOKED) on the socket made before the revoke
//	connect-after RESULT           a new socket's connect(REVOKED)
//	connect-other RESULT           a new socket's connect(OTHER), a grant not revoked
//	send-old RESULT                "after-revoke" written on the first connection
func doRevokeCheck(args []string) error {
	revoked, other := strArg(args, 0, ""), strArg(args, 1, "")
	c1, err := tcpConnect(revoked)
	fmt.Println("connect-before", res(err))
	if err != nil {
		return errInfo
	}
	pre, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Println("presocket", res(err))
		return errInfo
	}
	b := make([]byte, 1)
	for {
		n, err := unix.Read(c1, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != 1 {
			fmt.Println("wait", res(err), n)
			return errInfo
		}
		break
	}
	fmt.Println("connect-presocket", res(unix.Connect(pre, inet4(revoked))))
	c3, err := tcpConnect(revoked)
	fmt.Println("connect-after", res(err))
	if err == nil {
		unix.Close(c3)
	}
	c4, err := tcpConnect(other)
	fmt.Println("connect-other", res(err))
	if err == nil {
		writeAll(c4, []byte("other"))
		unix.Close(c4)
	}
	fmt.Println("send-old", res(writeAll(c1, []byte("after-revoke"))))
	unix.Close(c1)
	return errInfo
}

// doUDPReply is the container's half of the UDP reply test: it makes an
// unconnected UDP socket of IP's family, sends "hello" to IP:PORT (a granted
// destination), and prints "sent RESULT". With "tamper" it first tries to
// remove the socket's filter, one line each:
//
//	detach RESULT   setsockopt(SO_DETACH_FILTER)
//	attach RESULT   setsockopt(SO_ATTACH_FILTER) with an accept-all program
//	unlock RESULT   setsockopt(SO_LOCK_FILTER, 0)
//
// It then prints "got DATA" for each datagram it receives, until one whose
// data is "last".
func doUDPReply(args []string) error {
	fam, dst := inetAddr(strArg(args, 0, ""))
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if strArg(args, 1, "") == "tamper" {
		fmt.Println("detach", res(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)))
		all := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}}
		prog := unix.SockFprog{Len: 1, Filter: &all[0]}
		fmt.Println("attach", res(unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)))
		fmt.Println("unlock", res(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 0)))
	}
	fmt.Println("sent", res(unix.Sendto(fd, []byte("hello"), 0, dst)))
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		fmt.Printf("got %s\n", buf[:n])
		if string(buf[:n]) == "last" {
			return errInfo
		}
	}
}

// inetSocket makes a socket of ip's family and binds it to ip:port, after
// setting IPV6_V6ONLY to v6only ("0" or "1"; "-" leaves the default).
// A failed bind closes the socket.
func inetSocket(typ int, ip string, port int, v6only string) (int, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		die("bad address %q", ip)
	}
	fam := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: a.As16(), Port: port}
	if a.Is4() {
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: a.As4(), Port: port}
	}
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if v6only == "0" || v6only == "1" {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, int(v6only[0]-'0')); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// doInetBind binds a TCP or UDP socket of either family and prints one
// line: the bind's error, or
//
//	ok [listen RESULT] name HOSTADDR [v6only N]
//
// where listen is tried on TCP sockets only, HOSTADDR is the socket's name
// (the host address the service bound it to) and v6only is the socket's
// IPV6_V6ONLY after the bind (IPv6 sockets only).
func doInetBind(args []string) error {
	typ := unix.SOCK_STREAM
	switch strArg(args, 0, "") {
	case "tcp":
	case "udp":
		typ = unix.SOCK_DGRAM
	default:
		die("inet-bind tcp|udp IP PORT [V6ONLY]")
	}
	fd, err := inetSocket(typ, strArg(args, 1, ""), intArg(args, 2, 0), strArg(args, 3, "-"))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	line := "ok"
	if typ == unix.SOCK_STREAM {
		line += " listen " + res(unix.Listen(fd, 1))
	}
	var name string
	switch sa, _ := unix.Getsockname(fd); a := sa.(type) {
	case *unix.SockaddrInet4:
		name = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		name = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
		v, _ := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		name += " v6only " + strconv.Itoa(v)
	}
	fmt.Println(line, "name", name)
	return errInfo
}

func doServeInet(args []string) error {
	n, msg := intArg(args, 3, 1), strArg(args, 4, "hello")
	l, err := inetSocket(unix.SOCK_STREAM, strArg(args, 0, ""), portArg(args, 1), strArg(args, 2, "-"))
	if err != nil {
		return err
	}
	defer unix.Close(l)
	if err := unix.Listen(l, 16); err != nil {
		return err
	}
	fmt.Printf("listening %d\n", portArg(args, 1))
	for i := 1; i <= n; i++ {
		c, err := accept(l)
		if err != nil {
			return err
		}
		err = writeAll(c, []byte(fmt.Sprintf("%s %d\n", msg, i)))
		unix.Close(c)
		if err != nil {
			return err
		}
	}
	return nil
}

// doGoServe is serve through Go's net package, which decides on first use,
// by binding [::1]:0 and [::ffff:127.0.0.1]:0, whether to listen on ":PORT"
// with one dual-stack IPv6 socket or an IPv4 one.
func doGoServe(args []string) error {
	port, n, msg := portArg(args, 0), intArg(args, 1, 1), strArg(args, 2, "hello")
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Printf("listening %d\n", port)
	for i := 1; i <= n; i++ {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c, "%s %d\n", msg, i)
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
