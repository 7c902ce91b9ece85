//go:build linux && (amd64 || arm64)

package netsvc

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Scenarios run in the confined child (see childMain). Each reports what the
// container saw; the parent's tests assert it.
var scenarios = map[string]func(*childIO, []string){
	"sockets": scSockets,
	"http":    scHTTP,
	"bind":    scBind,
	"connect": scConnect,
	"udp":     scUDP,
	"unix":    scUnix,
	"race":    scRace,
	"revoke":  scRevoke,
	"bench":   scBench,
	"bulk":    scBulk,
	"blocked": scBlocked,
	"racefd":  scRaceFD,
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Raw socket addresses, written here independently of the package's encoder.
func rawSa4(ip string, port int) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], uint16(port))
	copy(b[4:], netip.MustParseAddr(ip).AsSlice())
	return b
}

func rawSa6(ip string, port int) []byte {
	b := make([]byte, 28)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], uint16(port))
	a := netip.MustParseAddr(ip).As16()
	copy(b[8:], a[:])
	return b
}

func rawSaUn(path string) []byte {
	b := make([]byte, 2+len(path)+1)
	binary.NativeEndian.PutUint16(b, unix.AF_UNIX)
	copy(b[2:], path)
	return b
}

func ptr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

func sysAddr(nr uintptr, fd int, sa []byte) error {
	_, _, e := unix.Syscall(nr, uintptr(fd), ptr(sa), uintptr(len(sa)))
	runtime.KeepAlive(sa)
	if e != 0 {
		return e
	}
	return nil
}

func bindRaw(fd int, sa []byte) error    { return sysAddr(unix.SYS_BIND, fd, sa) }
func connectRaw(fd int, sa []byte) error { return sysAddr(unix.SYS_CONNECT, fd, sa) }

func sendtoRaw(fd int, data []byte, flags int, sa []byte) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), ptr(data), uintptr(len(data)), uintptr(flags), ptr(sa), uintptr(len(sa)))
	runtime.KeepAlive(data)
	runtime.KeepAlive(sa)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// msg is a message for sendmsgRaw and sendmmsgRaw.
type msg struct {
	name []byte
	iov  [][]byte
	oob  []byte
}

func (m *msg) hdr() (*unix.Msghdr, []unix.Iovec) {
	iov := make([]unix.Iovec, len(m.iov))
	for i, b := range m.iov {
		if len(b) > 0 {
			iov[i].Base = &b[0]
		}
		iov[i].SetLen(len(b))
	}
	h := &unix.Msghdr{}
	if len(iov) > 0 {
		h.Iov = &iov[0]
		h.Iovlen = uint64(len(iov))
	}
	if len(m.name) > 0 {
		h.Name = &m.name[0]
		h.Namelen = uint32(len(m.name))
	}
	if len(m.oob) > 0 {
		h.Control = &m.oob[0]
		h.SetControllen(len(m.oob))
	}
	return h, iov
}

func sendmsgRaw(fd int, m msg, flags int) (int, error) {
	h, iov := m.hdr()
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(h)), uintptr(flags))
	runtime.KeepAlive(iov)
	runtime.KeepAlive(m)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func sendmmsgRaw(fd int, ms []msg, flags int) (int, []uint32, error) {
	hs := make([]unix.Mmsghdr, len(ms))
	var keep [][]unix.Iovec
	for i := range ms {
		h, iov := ms[i].hdr()
		hs[i].Hdr = *h
		keep = append(keep, iov)
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)), uintptr(flags), 0, 0)
	runtime.KeepAlive(keep)
	runtime.KeepAlive(ms)
	lens := make([]uint32, len(hs))
	for i := range hs {
		lens[i] = hs[i].Len
	}
	if e != 0 {
		return 0, lens, e
	}
	return int(r), lens, nil
}

func cmsgInt(level, typ int, v uint32) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], v)
	return b
}

func nameOf(fd int) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return errName(err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return fmt.Sprintf("%T", sa)
}

func mustSocket(d, t int) int {
	fd, err := unix.Socket(d, t, 0)
	if err != nil {
		panic(fmt.Sprintf("socket(%d, %d): %v", d, t, err))
	}
	return fd
}

// scSockets: socket() for every family, type and protocol of interest.
func scSockets(io *childIO, _ []string) {
	cases := []struct {
		name    string
		d, t, p int
	}{
		{"tcp4", unix.AF_INET, unix.SOCK_STREAM, 0},
		{"tcp4_proto", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP},
		{"tcp6", unix.AF_INET6, unix.SOCK_STREAM, 0},
		{"udp4", unix.AF_INET, unix.SOCK_DGRAM, 0},
		{"unix", unix.AF_UNIX, unix.SOCK_STREAM, 0},
		{"unix_dgram", unix.AF_UNIX, unix.SOCK_DGRAM, 0},
		{"netlink", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE},
		{"packet", unix.AF_PACKET, unix.SOCK_RAW, 0},
		{"raw", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP},
		{"raw6", unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW},
		{"seqpacket", unix.AF_INET, unix.SOCK_SEQPACKET, 0},
		{"mptcp", unix.AF_INET, unix.SOCK_STREAM, 262},
		{"sctp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP},
		{"ping", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP},
		{"badflags", unix.AF_INET, unix.SOCK_STREAM | 0x100, 0},
	}
	for _, c := range cases {
		fd, err := unix.Socket(c.d, c.t, c.p)
		io.report(c.name, errName(err))
		if err == nil {
			if c.name == "tcp4" {
				dom, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
				typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
				io.report("tcp4_kind", fmt.Sprintf("%d/%d fd>2:%v", dom, typ, fd > 2))
			}
			unix.Close(fd)
		}
	}
	flags := func(fd int) string {
		fdfl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		return fmt.Sprintf("cloexec=%v nonblock=%v", fdfl&unix.FD_CLOEXEC != 0, fl&unix.O_NONBLOCK != 0)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err == nil {
		io.report("flags_set", flags(fd))
		unix.Close(fd)
	}
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err == nil {
		io.report("flags_clear", flags(fd))
		unix.Close(fd)
	}

	// A full descriptor table: ADDFD fails in the caller and the call is
	// answered with EMFILE.
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	small := lim
	small.Cur = 64
	unix.Setrlimit(unix.RLIMIT_NOFILE, &small)
	var dups []int
	for {
		d, err := unix.Dup(0)
		if err != nil {
			break
		}
		dups = append(dups, d)
	}
	_, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	io.report("socket_emfile", errName(err))
	for _, d := range dups {
		unix.Close(d)
	}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
}

// scHTTP: a Go program's own net package: listen on container port 80,
// serve one request; dial a granted and a refused destination.
// Args: granted port, refused port.
func scHTTP(io *childIO, args []string) {
	c, err := net.Dial("tcp", "127.0.0.1:"+args[0])
	io.report("dial_granted", errName(err))
	if err == nil {
		c.Close()
	}
	_, err = net.Dial("tcp", "127.0.0.1:"+args[1])
	io.report("dial_refused", errName(err))

	ln, err := net.Listen("tcp", ":80")
	io.report("listen", errName(err))
	if err != nil {
		return
	}
	io.report("addr", ln.Addr().String())
	io.say("listening")
	conn, err := ln.Accept()
	if err != nil {
		io.report("accept", errName(err))
		return
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	io.report("request", strings.TrimSpace(line))
	fmt.Fprintf(conn, "HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\nhello from container")
	conn.Close()
	ln.Close()
}

// scBind: bind and listen. The parent grants tcp/80 and udp/53.
func scBind(io *childIO, _ []string) {
	s := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	io.report("bind_any80", errName(bindRaw(s, rawSa4("0.0.0.0", 80))))
	io.report("name_any80", nameOf(s))
	io.report("listen_any80", errName(unix.Listen(s, 16)))
	io.report("bind_again", errName(bindRaw(s, rawSa4("0.0.0.0", 80))))
	unix.Close(s)

	try := func(key string, sa []byte) {
		s := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
		io.report(key, errName(bindRaw(s, sa)))
		unix.Close(s)
	}
	try("bind_lo80", rawSa4("127.0.0.1", 80))
	try("bind_lo2_80", rawSa4("127.0.0.2", 80))
	try("bind_81", rawSa4("0.0.0.0", 81))
	try("bind_0", rawSa4("0.0.0.0", 0))
	try("bind_foreign", rawSa4("10.9.9.9", 80))
	try("bind_short", rawSa4("0.0.0.0", 80)[:8])
	try("bind_family", rawSa6("::", 80))
	unspec := rawSa4("0.0.0.0", 80)
	unspec[0], unspec[1] = 0, 0
	try("bind_unspec_any", unspec)
	unspecLo := rawSa4("127.0.0.1", 80)
	unspecLo[0], unspecLo[1] = 0, 0
	try("bind_unspec_lo", unspecLo)

	s = mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	io.report("listen_unbound", errName(unix.Listen(s, 16)))
	_, _, e := unix.Syscall(unix.SYS_BIND, uintptr(s), ptr(make([]byte, 200)), 200)
	io.report("bind_long", errName(errnoErr(e)))
	_, _, e = unix.Syscall(unix.SYS_BIND, uintptr(s), 8, 16)
	io.report("bind_badptr", errName(errnoErr(e)))
	unix.Close(s)
	io.report("bind_badfd", errName(bindRaw(999, rawSa4("0.0.0.0", 80))))
	var p [2]int
	unix.Pipe2(p[:], unix.O_CLOEXEC)
	io.report("bind_pipe", errName(bindRaw(p[0], rawSa4("0.0.0.0", 80))))

	s6 := mustSocket(unix.AF_INET6, unix.SOCK_STREAM)
	io.report("bind6_any80", errName(bindRaw(s6, rawSa6("::", 80))))
	io.report("name6", nameOf(s6))
	io.report("listen6", errName(unix.Listen(s6, 16)))
	unix.Close(s6)

	u := mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	io.report("bind_udp53", errName(bindRaw(u, rawSa4("0.0.0.0", 53))))
	io.report("name_udp53", nameOf(u))
	io.report("listen_udp", errName(unix.Listen(u, 1)))
	unix.Close(u)
	u = mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	io.report("bind_udp80", errName(bindRaw(u, rawSa4("0.0.0.0", 80))))
	unix.Close(u)

	sp, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	path := fmt.Sprintf("/tmp/netsvc-test-%d.sock", os.Getpid())
	io.report("bind_unix", errName(bindRaw(sp[0], rawSaUn(path))))
	_, err := os.Stat(path)
	io.report("unix_file_made", err == nil)
	os.Remove(path)
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// scConnect: connect on TCP, UDP and socketpair sockets.
// Args: granted TCP port, refused TCP port, granted UDP port, refused UDP
// port, path of a host AF_UNIX datagram socket.
func scConnect(io *childIO, args []string) {
	a, b, u, ud, path := atoi(args[0]), atoi(args[1]), atoi(args[2]), atoi(args[3]), args[4]
	try := func(key string, d, t int, sa []byte) int {
		s := mustSocket(d, t)
		io.report(key, errName(connectRaw(s, sa)))
		return s
	}
	unix.Close(try("tcp_granted", unix.AF_INET, unix.SOCK_STREAM, rawSa4("127.0.0.1", a)))
	unix.Close(try("tcp_denied", unix.AF_INET, unix.SOCK_STREAM, rawSa4("127.0.0.1", b)))
	unix.Close(try("tcp_unspecified", unix.AF_INET, unix.SOCK_STREAM, rawSa4("0.0.0.0", a)))
	unix.Close(try("tcp_unspecified_denied", unix.AF_INET, unix.SOCK_STREAM, rawSa4("0.0.0.0", b)))
	unix.Close(try("tcp_mapped", unix.AF_INET6, unix.SOCK_STREAM, rawSa6("::ffff:127.0.0.1", a)))
	unix.Close(try("tcp_mapped_denied", unix.AF_INET6, unix.SOCK_STREAM, rawSa6("::ffff:127.0.0.1", b)))
	unix.Close(try("tcp_short", unix.AF_INET, unix.SOCK_STREAM, rawSa4("127.0.0.1", a)[:8]))
	unix.Close(try("tcp_family", unix.AF_INET, unix.SOCK_STREAM, rawSa6("::1", a)))
	unix.Close(try("tcp_long", unix.AF_INET, unix.SOCK_STREAM, make([]byte, 129)))
	s := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(s), 8, 16)
	io.report("tcp_badptr", errName(errnoErr(e)))
	unix.Close(s)

	nb := mustSocket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
	io.report("tcp_nonblock", errName(connectRaw(nb, rawSa4("127.0.0.1", a))))
	pfd := []unix.PollFd{{Fd: int32(nb), Events: unix.POLLOUT}}
	unix.Poll(pfd, 5000)
	soerr, _ := unix.GetsockoptInt(nb, unix.SOL_SOCKET, unix.SO_ERROR)
	io.report("tcp_nonblock_soerror", soerr)
	unix.Close(nb)

	us := try("udp_granted", unix.AF_INET, unix.SOCK_DGRAM, rawSa4("127.0.0.1", u))
	io.report("udp_denied", errName(connectRaw(us, rawSa4("127.0.0.1", ud))))
	unspec := make([]byte, 16)
	io.report("udp_unspec", errName(connectRaw(us, unspec)))
	unix.Close(us)

	sp, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	io.report("unix_named", errName(connectRaw(sp[0], rawSaUn(path))))
	unix.Write(sp[0], []byte("still paired"))
	buf := make([]byte, 64)
	n, _ := unix.Read(sp[1], buf)
	io.report("unix_paired", string(buf[:n]) == "still paired")
	io.report("unix_unspec", errName(connectRaw(sp[0], make([]byte, 2))))

	// MSG_FASTOPEN: an implicit connect, checked like connect.
	fo := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	io.report("fastopen_granted", errName2(sendtoRaw(fo, []byte("x"), unix.MSG_FASTOPEN, rawSa4("127.0.0.1", a))))
	unix.Close(fo)
	fo = mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	io.report("fastopen_denied", errName2(sendtoRaw(fo, []byte("x"), unix.MSG_FASTOPEN, rawSa4("127.0.0.1", b))))
	io.report("fastopen_sendmsg_denied", errName2(sendmsgRaw(fo, msg{name: rawSa4("127.0.0.1", b), iov: [][]byte{[]byte("x")}}, unix.MSG_FASTOPEN)))
	io.report("tcp_sendto_addr_ignored", errName2(sendtoRaw(fo, []byte("x"), 0, rawSa4("127.0.0.1", b))))
	unix.Close(fo)

	// An IPv6 routing header (segment routing) would send every packet to
	// its segment instead of the checked destination.
	u6 := mustSocket(unix.AF_INET6, unix.SOCK_DGRAM)
	srh := make([]byte, 24)
	srh[1], srh[2] = 2, 4 // hdrlen 2 (one segment), type 4 (SRH), segments_left 0
	srh[8], srh[23] = 0xfd, 0x77
	io.report("rthdr_set", errName(unix.SetsockoptString(u6, unix.IPPROTO_IPV6, unix.IPV6_RTHDR, string(srh))))
	io.report("rthdr_connect", errName(connectRaw(u6, rawSa6("::1", u))))
	io.report("rthdr_sendto", errName2(sendtoRaw(u6, []byte("x"), 0, rawSa6("::1", u))))
	unix.Close(u6)
}

func errName2(n int, err error) string {
	if err != nil {
		return errName(err)
	}
	return strconv.Itoa(n)
}

// scUDP: sendto, sendmsg and sendmmsg with destinations.
// Args: granted UDP port, refused UDP port.
func scUDP(io *childIO, args []string) {
	r1, r2 := atoi(args[0]), atoi(args[1])
	g, d := rawSa4("127.0.0.1", r1), rawSa4("127.0.0.1", r2)
	u := mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	io.report("sendto_granted", errName2(sendtoRaw(u, []byte("a"), 0, g)))
	io.report("sendto_denied", errName2(sendtoRaw(u, []byte("b"), 0, d)))
	io.report("sendmsg_granted", errName2(sendmsgRaw(u, msg{name: g, iov: [][]byte{[]byte("c"), nil, []byte("d")}}, 0)))
	io.report("sendmsg_denied", errName2(sendmsgRaw(u, msg{name: d, iov: [][]byte{[]byte("z")}}, 0)))
	n, lens, err := sendmmsgRaw(u, []msg{
		{name: g, iov: [][]byte{[]byte("e")}},
		{name: g, iov: [][]byte{[]byte("ff")}},
		{name: d, iov: [][]byte{[]byte("g")}},
		{name: g, iov: [][]byte{[]byte("h")}},
	}, 0)
	io.report("sendmmsg", fmt.Sprintf("%s lens=%v", errName2(n, err), lens))
	n, _, err = sendmmsgRaw(u, []msg{{name: d, iov: [][]byte{[]byte("x")}}}, 0)
	io.report("sendmmsg_denied", errName2(n, err))
	io.report("cmsg_ttl", errName2(sendmsgRaw(u, msg{name: g, iov: [][]byte{[]byte("i")}, oob: cmsgInt(unix.IPPROTO_IP, unix.IP_TTL, 9)}, 0)))
	lsrr := make([]byte, unix.CmsgSpace(8))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&lsrr[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_RETOPTS
	h.SetLen(unix.CmsgLen(8))
	copy(lsrr[unix.CmsgLen(0):], []byte{1, 131, 7, 4, 127, 0, 0, 77}) // NOP, LSRR via 127.0.0.77
	io.report("cmsg_retopts", errName2(sendmsgRaw(u, msg{name: g, iov: [][]byte{[]byte("y")}, oob: lsrr}, 0)))
	io.report("cmsg_mark", errName2(sendmsgRaw(u, msg{name: g, iov: [][]byte{[]byte("y")}, oob: cmsgInt(unix.SOL_SOCKET, unix.SO_MARK, 7)}, 0)))
	io.report("cmsg_rights", errName2(sendmsgRaw(u, msg{name: g, iov: [][]byte{[]byte("y")}, oob: unix.UnixRights(0)}, 0)))
	bad := cmsgInt(unix.IPPROTO_IP, unix.IP_TTL, 9)
	binary.NativeEndian.PutUint64(bad, 4096) // cmsg_len past the buffer
	io.report("cmsg_badlen", errName2(sendmsgRaw(u, msg{name: g, iov: [][]byte{[]byte("y")}, oob: bad}, 0)))

	ug, ud := slices.Clone(g), slices.Clone(d)
	ug[0], ug[1], ud[0], ud[1] = 0, 0, 0, 0 // AF_UNSPEC: udp_sendmsg reads it as AF_INET
	io.report("unspec_granted", errName2(sendtoRaw(u, []byte("j"), 0, ug)))
	io.report("unspec_denied", errName2(sendtoRaw(u, []byte("y"), 0, ud)))
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(u), 8, 1, 0, ptr(g), 16)
	io.report("sendto_badbuf", errName(errnoErr(e)))
	_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(u), ptr([]byte("y")), 1, 0, ptr(g), 0)
	io.report("sendto_zerolen_addr", errName(errnoErr(e)))
	io.report("sendto_unspecified", errName2(sendtoRaw(u, []byte("m"), 0, rawSa4("0.0.0.0", r1))))

	// IPV6_PKTINFO names the source address; with IPV6_FREEBIND the kernel
	// would take any, so the service refuses a source then.
	u6 := mustSocket(unix.AF_INET6, unix.SOCK_DGRAM)
	pktinfo := func(src string) []byte {
		b := make([]byte, unix.CmsgSpace(20))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(20))
		a := netip.MustParseAddr(src).As16()
		copy(b[unix.CmsgLen(0):], a[:])
		return b
	}
	dst6 := rawSa6("::1", r1)
	io.report("pktinfo_local", errName2(sendmsgRaw(u6, msg{name: dst6, iov: [][]byte{[]byte("y")}, oob: pktinfo("::1")}, 0)))
	unix.SetsockoptInt(u6, unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
	io.report("pktinfo_freebind", errName2(sendmsgRaw(u6, msg{name: dst6, iov: [][]byte{[]byte("y")}, oob: pktinfo("2001:db8::66")}, 0)))
	io.report("pktinfo_freebind_unspecified", errName2(sendmsgRaw(u6, msg{name: dst6, iov: [][]byte{[]byte("y")}, oob: pktinfo("::")}, 0)))
	unix.Close(u6)

	c := mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	io.report("connected", errName(connectRaw(c, g)))
	io.report("sendmsg_connected", errName2(sendmsgRaw(c, msg{iov: [][]byte{[]byte("k")}}, 0)))
	io.report("send_connected", errName2(unix.Write(c, []byte("l"))))
	io.report("sendmsg_connected_denied", errName2(sendmsgRaw(c, msg{name: d, iov: [][]byte{[]byte("y")}}, 0)))
}

// scUnix: sendmsg on socketpair ends, which the filter traps like any other.
func scUnix(io *childIO, _ []string) {
	sp, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	io.report("plain", errName2(sendmsgRaw(sp[0], msg{iov: [][]byte{[]byte("hello")}}, 0)))
	buf := make([]byte, 64)
	n, _ := unix.Read(sp[1], buf)
	io.report("plain_recv", string(buf[:n]))

	var p [2]int
	unix.Pipe2(p[:], unix.O_CLOEXEC)
	io.report("rights_send", errName2(sendmsgRaw(sp[0], msg{iov: [][]byte{[]byte("x")}, oob: unix.UnixRights(p[0])}, 0)))
	oob := make([]byte, 64)
	_, oobn, _, _, err := unix.Recvmsg(sp[1], buf, oob, 0)
	got := "none"
	if err == nil {
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cms) == 1 {
			if fds, err := unix.ParseUnixRights(&cms[0]); err == nil && len(fds) == 1 {
				unix.Write(p[1], []byte("through the passed pipe"))
				n, _ := unix.Read(fds[0], buf)
				got = string(buf[:n])
			}
		}
	}
	io.report("rights_recv", got)
	io.report("rights_badfd", errName2(sendmsgRaw(sp[0], msg{iov: [][]byte{[]byte("x")}, oob: unix.UnixRights(987)}, 0)))
	io.report("credentials", errName2(sendmsgRaw(sp[0], msg{iov: [][]byte{[]byte("x")},
		oob: unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid())})}, 0)))

	dp, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	io.report("dgram_named", errName2(sendmsgRaw(dp[0], msg{name: rawSaUn("/run/anything"), iov: [][]byte{[]byte("x")}}, 0)))
	io.report("dgram_sendto_named", errName2(sendtoRaw(dp[0], []byte("x"), 0, rawSaUn("/run/anything"))))

	// EPIPE, and the SIGPIPE the kernel would raise.
	ep, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	unix.Close(ep[1])
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, unix.SIGPIPE)
	io.report("epipe", errName2(sendmsgRaw(ep[0], msg{iov: [][]byte{[]byte("x")}}, 0)))
	select {
	case <-sig:
		io.report("sigpipe", true)
	case <-time.After(2 * time.Second):
		io.report("sigpipe", false)
	}
	io.report("epipe_nosignal", errName2(sendmsgRaw(ep[0], msg{iov: [][]byte{[]byte("x")}}, unix.MSG_NOSIGNAL)))
	select {
	case <-sig:
		io.report("sigpipe_nosignal", true)
	case <-time.After(300 * time.Millisecond):
		io.report("sigpipe_nosignal", false)
	}

	// A sendmsg blocked on a full socketpair must not hold up the
	// container's other trapped calls: here, the thread that will read.
	bp, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	unix.SetsockoptInt(bp[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	done := make(chan string, 1)
	go func() {
		runtime.LockOSThread()
		done <- errName2(sendmsgRaw(bp[0], msg{iov: [][]byte{big}}, 0))
	}()
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	io.report("socket_during_send", errName(err))
	io.report("socket_during_send_fast", time.Since(t0) < time.Second)
	if err == nil {
		unix.Close(fd)
	}
	recv := make([]byte, 0, len(big))
	for len(recv) < len(big) {
		n, err := unix.Read(bp[1], buf[:cap(buf)])
		if err != nil || n == 0 {
			break
		}
		recv = append(recv, buf[:n]...)
	}
	io.report("bulk_sent", <-done)
	io.report("bulk_intact", slices.Equal(recv, big))
}

// raceAddr is the sockaddr_in the racing thread rewrites during connect.
var raceAddr [4]uint32

// scRace: one thread connects with raceAddr while another flips its port
// between a granted and a refused one. Args: granted port, refused port,
// iterations.
func scRace(io *childIO, args []string) {
	a, b, n := atoi(args[0]), atoi(args[1]), atoi(args[2])
	word := func(port int) uint32 { return binary.NativeEndian.Uint32(rawSa4("127.0.0.1", port)) }
	wa, wb := word(a), word(b)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&raceAddr[0])), 16), rawSa4("127.0.0.1", a))
	var stop atomic.Bool
	go func() {
		runtime.LockOSThread()
		for !stop.Load() {
			atomic.StoreUint32(&raceAddr[0], wb)
			for range 64 {
				atomic.LoadUint32(&raceAddr[1])
			}
			atomic.StoreUint32(&raceAddr[0], wa)
			for range 64 {
				atomic.LoadUint32(&raceAddr[1])
			}
		}
	}()
	counts := map[string]int{}
	for range n {
		s := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
		_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(s), uintptr(unsafe.Pointer(&raceAddr[0])), 16)
		counts[errName(errnoErr(e))]++
		unix.Close(s)
	}
	stop.Store(true)
	io.report("ok", counts["ok"])
	io.report("eacces", counts["EACCES"])
	io.report("other", n-counts["ok"]-counts["EACCES"])
}

// scRaceFD: one thread connects descriptor number N to a port granted for
// UDP only, while another keeps putting a TCP socket and a UDP socket at N
// (dup3). Args: port, iterations.
func scRaceFD(io *childIO, args []string) {
	port, n := atoi(args[0]), atoi(args[1])
	sa := rawSa4("127.0.0.1", port)
	const slot = 500
	var tcp, udp atomic.Int32
	tcp.Store(int32(mustSocket(unix.AF_INET, unix.SOCK_STREAM)))
	udp.Store(int32(mustSocket(unix.AF_INET, unix.SOCK_DGRAM)))
	unix.Dup3(int(tcp.Load()), slot, 0)
	var stop atomic.Bool
	go func() {
		runtime.LockOSThread()
		for !stop.Load() {
			unix.Dup3(int(udp.Load()), slot, 0)
			unix.Dup3(int(tcp.Load()), slot, 0)
		}
	}()
	counts := map[string]int{}
	for range n {
		counts[errName(connectRaw(slot, sa))]++
		// Fresh sockets for the next round. The racer may still dup3 an
		// old number, now closed (EBADF) or reused: either way a
		// descriptor of this process.
		oldT := tcp.Swap(int32(mustSocket(unix.AF_INET, unix.SOCK_STREAM)))
		oldU := udp.Swap(int32(mustSocket(unix.AF_INET, unix.SOCK_DGRAM)))
		unix.Close(int(oldT))
		unix.Close(int(oldU))
	}
	stop.Store(true)
	io.report("ok", counts["ok"])
	io.report("eacces", counts["EACCES"])
	io.report("other", n-counts["ok"]-counts["EACCES"])
}

// scRevoke: calls before and after the parent revokes every grant.
// Args: granted TCP port.
func scRevoke(io *childIO, args []string) {
	a := atoi(args[0])
	s1 := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	io.report("bind_before", errName(bindRaw(s1, rawSa4("0.0.0.0", 80))))
	s2 := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	io.report("connect_before", errName(connectRaw(s2, rawSa4("127.0.0.1", a))))
	s3 := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	s4 := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	io.wait("revoke")
	io.report("listen_after", errName(unix.Listen(s1, 4)))
	io.report("connect_after", errName(connectRaw(s3, rawSa4("127.0.0.1", a))))
	io.report("bind_after", errName(bindRaw(s4, rawSa4("0.0.0.0", 80))))
	_, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	io.report("socket_after", errName(err))
	_, err = unix.Write(s2, []byte("x"))
	io.report("write_connected_after", errName(err))
}

// scBench times calls in a loop, on request: the parent sends "N", the
// child answers "p50 mean" in nanoseconds; "quit" ends. Args: kind, port.
func scBench(io *childIO, args []string) {
	kind, port := args[0], atoi(args[1])
	sa := rawSa4("127.0.0.1", port)
	for {
		line := io.wait("ready")
		if line == "quit" {
			return
		}
		n := atoi(line)
		d := make([]time.Duration, 0, n)
		for range n {
			var t0, t1 time.Time
			switch kind {
			case "socket":
				t0 = time.Now()
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				t1 = time.Now()
				if err != nil {
					panic(err)
				}
				unix.Close(fd)
			case "connect", "connect-denied":
				fd := mustSocket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC)
				t0 = time.Now()
				err := connectRaw(fd, sa)
				t1 = time.Now()
				if (err != nil) != (kind == "connect-denied") {
					panic(fmt.Sprintf("%s: %v", kind, err))
				}
				unix.Close(fd)
			case "sendto":
				fd := mustSocket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC)
				t0 = time.Now()
				_, err := sendtoRaw(fd, make([]byte, 64), 0, sa)
				t1 = time.Now()
				if err != nil {
					panic(err)
				}
				unix.Close(fd)
			}
			d = append(d, t1.Sub(t0))
		}
		slices.Sort(d)
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		io.say("%d %d", d[len(d)/2].Nanoseconds(), (sum / time.Duration(len(d))).Nanoseconds())
	}
}

// scBlocked: a sendmsg that blocks on a full socketpair, then the parent
// kills the child.
func scBlocked(io *childIO, _ []string) {
	bp, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	unix.SetsockoptInt(bp[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	go sendmsgRaw(bp[0], msg{iov: [][]byte{make([]byte, 1<<20)}}, 0)
	time.Sleep(200 * time.Millisecond)
	io.say("blocked")
	select {}
}

// scBulk: a socket from socket() (injected when filtered), connected
// through connect, then N MiB written with write(2), which no filter traps
// (or, with the argument "sendmsg", with sendmsg, which every filter traps).
// The parent sends N after "ready"; the child answers the nanoseconds the
// writes took. Args: port [sendmsg].
func scBulk(io *childIO, args []string) {
	port := atoi(args[0])
	mib := atoi(io.wait("ready"))
	fd := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	if err := connectRaw(fd, rawSa4("127.0.0.1", port)); err != nil {
		panic(err)
	}
	buf := make([]byte, 128<<10)
	total := mib << 20
	t0 := time.Now()
	write := unix.Write
	if len(args) > 1 && args[1] == "sendmsg" {
		write = func(fd int, b []byte) (int, error) { return sendmsgRaw(fd, msg{iov: [][]byte{b}}, 0) }
	}
	for sent := 0; sent < total; {
		n, err := write(fd, buf[:min(len(buf), total-sent)])
		if err != nil {
			panic(err)
		}
		sent += n
	}
	unix.Shutdown(fd, unix.SHUT_WR)
	unix.Read(fd, buf[:1]) // returns when the sink has read everything and closed
	io.say("%d", time.Since(t0).Nanoseconds())
	unix.Close(fd)
}
