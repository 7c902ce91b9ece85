//go:build linux && (amd64 || arm64)

package netsvc

import (
	"encoding/binary"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// msgIn is a message as the container described it: where its parts lie in
// its memory.
type msgIn struct {
	name       uint64
	namelen    int32
	zeroName   bool // sendto with an address pointer and a length of 0
	iov        []iovec
	total      uint64
	control    uint64
	controllen uint64
}

// outMsg is a message the service sends on its copy of the socket, built
// from what it read and checked.
type outMsg struct {
	name  []byte
	data  []byte
	oob   []byte
	flags int
}

// sendto serves sendto(fd, buf, len, flags, addr, addrlen); the filter
// traps it when addr is not NULL (or MSG_FASTOPEN is set).
func (l *loop) sendto(c *call) result {
	s, err := c.sock(0)
	if err != nil {
		return result{err: err}
	}
	flags := uint32(c.args[3])
	size := min(c.args[2], maxRWCount)
	in := msgIn{iov: []iovec{{c.args[1], size}}, total: size}
	if c.args[4] != 0 {
		in.name, in.namelen = c.args[4], int32(c.args[5])
		if in.namelen < 0 || in.namelen > sizeofSockaddrStorage {
			return result{err: einval}
		}
		in.zeroName = in.namelen == 0
	}
	return l.sendOne(c, s, in, flags)
}

// sendOne checks and performs one decoded send of sendto or sendmsg on the
// service's copy of the socket, answering with the bytes sent.
func (l *loop) sendOne(c *call, s sock, in msgIn, flags uint32) result {
	if err := l.sockChecks(s); err != nil {
		return result{err: err}
	}
	out, err := l.prepare(c, s, in, flags)
	if err != nil {
		return result{err: err}
	}
	if !c.valid() {
		return result{err: errGone}
	}
	return l.send(c, s, out, flags, func(n int) result { return performed(n, nil) })
}

// sendmsg serves sendmsg(fd, msg, flags); the filter traps every sendmsg,
// since msg_name and the control data are in memory it cannot read.
func (l *loop) sendmsg(c *call) result {
	s, err := c.sock(0)
	if err != nil {
		return result{err: err}
	}
	var hb [sizeofMsghdr]byte
	if err := c.read(c.args[1], hb[:]); err != nil {
		return result{err: err}
	}
	in, err := c.msgIn(hb[:])
	if err != nil {
		return result{err: err}
	}
	flags := uint32(c.args[2])
	return l.sendOne(c, s, in, flags)
}

// sendmmsg serves sendmmsg(fd, msgvec, vlen, flags): each message as
// sendmsg, in order. The first may wait for room like a sendmsg; the others
// are sent without waiting, and the batch ends at the first that fails or
// would block. The answer is the number sent, or the first message's error
// if none was (the kernel's rule); msg_len is written back for each message
// sent.
func (l *loop) sendmmsg(c *call) result {
	s, err := c.sock(0)
	if err != nil {
		return result{err: err}
	}
	vec, vlen, flags := c.args[1], int(min(uint32(c.args[2]), uioMaxIOV)), uint32(c.args[3])
	if vlen == 0 {
		return performed(0, nil)
	}
	hdrs := make([]byte, vlen*sizeofMmsghdr)
	if err := c.read(vec, hdrs); err != nil {
		return result{err: err}
	}
	if err := l.sockChecks(s); err != nil {
		return result{err: err}
	}
	hdr := func(i int) []byte { return hdrs[i*sizeofMmsghdr : i*sizeofMmsghdr+sizeofMsghdr] }
	setLen := func(i, n int) error {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(n))
		return c.write(vec+uint64(i*sizeofMmsghdr+offsetMsgLen), b[:])
	}
	in, err := c.msgIn(hdr(0))
	if err != nil {
		return result{err: err}
	}
	out, err := l.prepare(c, s, in, flags)
	if err != nil {
		return result{err: err}
	}
	if !c.valid() {
		return result{err: errGone}
	}
	rest := func(n int) result {
		if err := setLen(0, n); err != nil {
			return result{err: err}
		}
		sent := 1
		for i := 1; i < vlen; i++ {
			in, err := c.msgIn(hdr(i))
			var out outMsg
			if err == nil {
				out, err = l.prepare(c, s, in, flags)
			}
			if err != nil || !c.valid() {
				break
			}
			n, e := sendOnce(s.fd, out, msgDontwait|msgNosignal)
			if e != 0 || setLen(i, n) != nil {
				break
			}
			sent++
		}
		return performed(sent, nil)
	}
	return l.send(c, s, out, flags, rest)
}

// msgIn decodes a struct msghdr and reads its iovec array.
func (c *call) msgIn(hdr []byte) (msgIn, error) {
	m, err := decodeMsghdr(hdr)
	if err != nil {
		return msgIn{}, err
	}
	in := msgIn{name: m.name, namelen: m.namelen, control: m.control, controllen: m.controllen}
	if m.iovlen > 0 {
		b := make([]byte, m.iovlen*sizeofIovec)
		if err := c.read(m.iov, b); err != nil {
			return msgIn{}, err
		}
		in.iov, in.total, err = decodeIovecs(b)
		if err != nil {
			return msgIn{}, err
		}
	}
	return in, nil
}

// sockChecks refuses sends on a socket whose sticky options would take its
// packets past the egress check (see routed).
func (l *loop) sockChecks(s sock) error {
	r, err := routed(s)
	if err != nil {
		return err
	}
	if r {
		return deny(eacces, "socket carries an IPv6 routing header")
	}
	return nil
}

// prepare reads and checks one message: its destination against the egress
// grants, its control messages against the rules, and its data (at most
// maxStreamChunk bytes of a stream; a larger datagram is EMSGSIZE).
func (l *loop) prepare(c *call, s sock, in msgIn, flags uint32) (outMsg, error) {
	out := outMsg{flags: int(flags &^ msgZerocopy)}
	inet := s.kind.inet()
	proto := s.kind.proto()
	if inet && proto == "" {
		return out, deny(eacces, "send on an inet socket that is neither TCP nor UDP")
	}

	// Destination.
	switch {
	case proto == ProtoTCP && flags&msgFastopen == 0:
		// TCP ignores msg_name unless MSG_FASTOPEN: so does the service.
	case in.zeroName:
		// sendto with an address of length 0: UDP refuses it, AF_UNIX
		// ignores it.
		if proto == ProtoUDP {
			return out, einval
		}
	case in.namelen > 0 && !inet:
		return out, deny(eacces, "send to a named address on a socket that is not AF_INET/AF_INET6")
	case in.namelen > 0:
		sa, err := c.sockaddr(in.name, in.namelen)
		if err != nil {
			return out, err
		}
		d, err := sendDest(s.kind, sa, int(in.namelen), flags)
		if err != nil {
			return out, err
		}
		if !d.none {
			if !l.grants.Egress(proto, d.ap) {
				return out, denyGrant(eacces, "no egress grant for "+proto+" "+d.ap.String(), "--egress "+d.ap.String()+"/"+proto)
			}
			out.name = d.sa.encode()
		}
	}

	// Control messages.
	if in.controllen > 0 {
		raw := make([]byte, in.controllen)
		if err := c.read(in.control, raw); err != nil {
			return out, err
		}
		cs, err := decodeCmsgs(raw)
		if err != nil {
			return out, err
		}
		keep := cs[:0]
		nfds := 0
		for _, m := range cs {
			var v cmsgVerdict
			if inet {
				v, err = inetCmsgRule(m)
			} else {
				v, err = unixCmsgRule(m)
			}
			if err == eacces || err == eperm {
				return out, deny(err.(errno), "control message refused")
			}
			if err != nil {
				return out, err
			}
			switch v {
			case cmsgDrop:
				continue
			case cmsgLocalSource:
				if foreign, err := foreignSource(s); err != nil || foreign {
					if err == nil {
						err = deny(eacces, "IPV6_PKTINFO source address on a freebind socket")
					}
					return out, err
				}
			}
			if !inet && m.typ == scmRights {
				nfds += len(m.data) / 4
				if nfds > scmMaxFD {
					return out, einval
				}
				if m.data, err = c.copyRights(m.data); err != nil {
					return out, err
				}
			}
			keep = append(keep, m)
		}
		out.oob = encodeCmsgs(keep)
	}

	if flags&msgZerocopy != 0 {
		// The service sends a copy of the data, so it cannot post the
		// completion a MSG_ZEROCOPY sender waits for. Without SO_ZEROCOPY
		// the kernel ignores the flag, and so does the service.
		if zc, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY); err == nil && zc != 0 {
			return out, deny(enobufs, "MSG_ZEROCOPY on a trapped send")
		}
	}

	// Data.
	n := in.total
	if s.kind.typ == sockStream {
		n = min(n, maxStreamChunk)
	} else if n > maxDatagram {
		return out, emsgsize
	}
	out.data = make([]byte, n)
	if err := c.readv(clip(in.iov, n), out.data); err != nil {
		return out, err
	}
	return out, nil
}

// copyRights replaces the descriptor numbers of an SCM_RIGHTS message by the
// service's copies of the caller's descriptors (EBADF for one it lacks, as
// the kernel answers).
func (c *call) copyRights(data []byte) ([]byte, error) {
	out := make([]byte, len(data))
	for i := 0; i+4 <= len(data); i += 4 {
		fd, err := c.fd(int32(binary.NativeEndian.Uint32(data[i:])))
		if err != nil {
			return nil, err
		}
		binary.NativeEndian.PutUint32(out[i:], uint32(fd))
	}
	return out, nil
}

// foreignSource reports whether the socket may send from an address that is
// not the host's (IP_FREEBIND or IP_TRANSPARENT, shared by AF_INET6).
func foreignSource(s sock) (bool, error) {
	for _, opt := range []int{unix.IP_FREEBIND, unix.IP_TRANSPARENT} {
		v, err := unix.GetsockoptInt(s.fd, unix.IPPROTO_IP, opt)
		if err != nil {
			return false, failure{eacces, &opError{"getsockopt IP_FREEBIND", err}}
		}
		if v != 0 {
			return true, nil
		}
	}
	return false, nil
}

// send performs out on the service's copy and answers with done(bytes sent),
// or with the kernel's error. The first attempt never blocks (MSG_DONTWAIT):
// if a blocking socket has no room, or took only part of a stream, the rest
// is left to a goroutine (wait), so the serving thread stays free. A send with
// MSG_FASTOPEN is an implicit connect and, like connect, runs inline.
func (l *loop) send(c *call, s sock, out outMsg, flags uint32, done func(n int) result) result {
	inline := flags&msgFastopen != 0
	extra := msgNosignal
	if !inline {
		extra |= msgDontwait
	}
	n, e := sendOnce(s.fd, out, extra)
	stream := s.kind.typ == sockStream
	if !inline && (e == unix.EAGAIN || e == 0 && stream && n < len(out.data)) && blocking(s, flags) {
		sent := 0
		if e == 0 {
			sent = n
		}
		return result{later: func() result { return l.wait(c, s, out, sent, flags, done) }}
	}
	if e != 0 {
		r := performed(0, e)
		r.after = sigpipe(c, s, flags, e)
		return r
	}
	return done(n)
}

// wait finishes a send on a blocking socket: it waits for room, resending
// without blocking, until the message (or, on a stream, all of it) is sent,
// SO_SNDTIMEO expires (EAGAIN, or the bytes sent so far), the call goes away,
// or the server stops (EINTR, or the bytes sent so far).
func (l *loop) wait(c *call, s sock, out outMsg, sent int, flags uint32, done func(n int) result) result {
	stream := s.kind.typ == sockStream
	var deadline time.Time
	if tv, err := unix.GetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO); err == nil && (tv.Sec != 0 || tv.Usec != 0) {
		deadline = time.Now().Add(time.Duration(tv.Nano()))
	}
	rest := out
	if sent > 0 { // the name and the control messages went with the first part
		rest = outMsg{data: out.data[sent:], flags: out.flags}
	}
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
	for {
		timeout := 100 // ms: how often the call's validity and the server's end are checked
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				if sent > 0 {
					return done(sent)
				}
				return performed(0, unix.EAGAIN)
			}
			timeout = min(timeout, int(left/time.Millisecond)+1)
		}
		if l.stopping.Load() {
			if sent > 0 {
				return done(sent)
			}
			return performed(0, unix.EINTR)
		}
		fds[0].Revents = 0
		unix.Poll(fds, timeout)
		if !c.valid() {
			return result{err: errGone}
		}
		n, e := sendOnce(s.fd, rest, msgDontwait|msgNosignal)
		if e == unix.EAGAIN {
			continue
		}
		if e != 0 {
			if sent > 0 {
				return done(sent)
			}
			r := performed(0, e)
			r.after = sigpipe(c, s, flags, e)
			return r
		}
		sent += n
		if !stream || sent >= len(out.data) {
			return done(sent)
		}
		rest = outMsg{data: out.data[sent:], flags: out.flags}
	}
}

// blocking reports whether the container would block in this send: neither
// MSG_DONTWAIT nor O_NONBLOCK on the socket's open file description.
func blocking(s sock, flags uint32) bool {
	if flags&msgDontwait != 0 {
		return false
	}
	fl, err := unix.FcntlInt(uintptr(s.fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK == 0
}

// sigpipe raises SIGPIPE in the calling thread after an EPIPE on a stream
// without MSG_NOSIGNAL, as the kernel would have (the service always sends
// with MSG_NOSIGNAL, so the signal is not its own). It runs after the answer,
// so that the signal does not cut the caller's wait short.
func sigpipe(c *call, s sock, flags uint32, e error) func() {
	if e != unix.EPIPE || s.kind.typ != sockStream || flags&msgNosignal != 0 {
		return nil
	}
	return func() {
		if p, err := c.thread(); err == nil {
			unix.PidfdSendSignal(p, unix.SIGPIPE, nil, 0)
		}
	}
}

// sendOnce is one sendmsg on fd.
func sendOnce(fd int, m outMsg, extra int) (int, unix.Errno) {
	var iov unix.Iovec
	if len(m.data) > 0 {
		iov.Base = &m.data[0]
		iov.SetLen(len(m.data))
	}
	h := unix.Msghdr{Iov: &iov, Iovlen: 1}
	if len(m.name) > 0 {
		h.Name = &m.name[0]
		h.Namelen = uint32(len(m.name))
	}
	if len(m.oob) > 0 {
		h.Control = &m.oob[0]
		h.SetControllen(len(m.oob))
	}
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), uintptr(m.flags|extra))
	runtime.KeepAlive(m)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}
