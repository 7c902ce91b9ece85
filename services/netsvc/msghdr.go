package netsvc

import (
	"encoding/binary"
	"math"
)

// The memory layouts of a 64-bit Linux caller (x86_64 and arm64 agree).
const (
	sizeofIovec    = 16 // struct iovec { void *iov_base; size_t iov_len; }
	sizeofMsghdr   = 56 // struct msghdr
	sizeofMmsghdr  = 64 // struct mmsghdr { struct msghdr msg_hdr; unsigned msg_len; } (padded)
	sizeofCmsghdr  = 16 // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }
	offsetMsgLen   = 56 // offset of msg_len in struct mmsghdr
	maxControlLen  = 64 << 10
	maxRWCount     = math.MaxInt32 &^ 4095 // MAX_RW_COUNT: the kernel never moves more in one call
	maxStreamChunk = 1 << 20               // bytes one trapped stream send takes at most (a short count is legal)
	maxDatagram    = 1 << 20               // larger datagrams are EMSGSIZE (the kernel's own limits are lower)
)

// msghdr is a struct msghdr read from a container: pointers into its memory,
// not yet followed.
type msghdr struct {
	name       uint64
	namelen    int32
	iov        uint64
	iovlen     uint64
	control    uint64
	controllen uint64
	flags      int32
}

// decodeMsghdr decodes a struct msghdr and applies the kernel's checks on
// it (copy_msghdr_from_user): a negative msg_namelen is EINVAL, a longer one
// than a sockaddr_storage is cut to it, no msg_name means no address, more
// than UIO_MAXIOV iovecs is EMSGSIZE, and control data longer than this
// service takes (64 KiB, below the kernel's optmem_max) is ENOBUFS.
func decodeMsghdr(b []byte) (msghdr, error) {
	if len(b) < sizeofMsghdr {
		return msghdr{}, efault
	}
	m := msghdr{
		name:       binary.NativeEndian.Uint64(b[0:]),
		namelen:    int32(binary.NativeEndian.Uint32(b[8:])),
		iov:        binary.NativeEndian.Uint64(b[16:]),
		iovlen:     binary.NativeEndian.Uint64(b[24:]),
		control:    binary.NativeEndian.Uint64(b[32:]),
		controllen: binary.NativeEndian.Uint64(b[40:]),
		flags:      int32(binary.NativeEndian.Uint32(b[48:])),
	}
	if m.name == 0 {
		m.namelen = 0
	}
	if m.namelen < 0 {
		return m, einval
	}
	if m.namelen > sizeofSockaddrStorage {
		m.namelen = sizeofSockaddrStorage
	}
	if m.namelen == 0 {
		m.name = 0
	}
	if m.iovlen > uioMaxIOV {
		return m, emsgsize
	}
	if m.controllen > maxControlLen {
		return m, enobufs
	}
	if m.control == 0 {
		m.controllen = 0
	}
	return m, nil
}

// iovec is one struct iovec of the caller.
type iovec struct {
	base uint64
	len  uint64
}

// decodeIovecs decodes len(b)/16 iovecs and their total length, capped at
// MAX_RW_COUNT as the kernel caps it. An iov_len that is negative as a
// ssize_t is EINVAL.
func decodeIovecs(b []byte) ([]iovec, uint64, error) {
	n := len(b) / sizeofIovec
	iov := make([]iovec, 0, n)
	var total uint64
	for i := range n {
		v := iovec{
			base: binary.NativeEndian.Uint64(b[i*sizeofIovec:]),
			len:  binary.NativeEndian.Uint64(b[i*sizeofIovec+8:]),
		}
		if int64(v.len) < 0 {
			return nil, 0, einval
		}
		if v.len > maxRWCount-total {
			v.len = maxRWCount - total
		}
		total += v.len
		iov = append(iov, v)
	}
	return iov, total, nil
}

// clip returns the iovecs that cover the first n bytes of iov.
func clip(iov []iovec, n uint64) []iovec {
	var out []iovec
	for _, v := range iov {
		if n == 0 {
			break
		}
		if v.len == 0 {
			continue
		}
		v.len = min(v.len, n)
		n -= v.len
		out = append(out, v)
	}
	return out
}

// cmsg is one control message: its level, type and data.
type cmsg struct {
	level int32
	typ   int32
	data  []byte
}

func cmsgAlign(n uint64) uint64 { return (n + 7) &^ 7 }

// decodeCmsgs splits control data as the kernel walks it (for_each_cmsghdr
// with CMSG_OK): a header that does not fit ends the walk, a cmsg_len below
// the header size or beyond the end of the buffer is EINVAL. The data slices
// alias b.
func decodeCmsgs(b []byte) ([]cmsg, error) {
	var out []cmsg
	size := uint64(len(b))
	for off := uint64(0); off+sizeofCmsghdr <= size; {
		clen := binary.NativeEndian.Uint64(b[off:])
		if clen < sizeofCmsghdr || clen > size-off {
			return nil, einval
		}
		out = append(out, cmsg{
			level: int32(binary.NativeEndian.Uint32(b[off+8:])),
			typ:   int32(binary.NativeEndian.Uint32(b[off+12:])),
			data:  b[off+sizeofCmsghdr : off+clen],
		})
		next := cmsgAlign(clen)
		if next > size-off { // the aligned length runs past the end: no further header
			break
		}
		off += next
	}
	return out, nil
}

// encodeCmsgs is the inverse of decodeCmsgs: each message with its header,
// padded to 8 bytes (CMSG_SPACE), the last one too.
func encodeCmsgs(cs []cmsg) []byte {
	var n uint64
	for _, c := range cs {
		n += cmsgAlign(sizeofCmsghdr + uint64(len(c.data)))
	}
	b := make([]byte, n)
	off := uint64(0)
	for _, c := range cs {
		binary.NativeEndian.PutUint64(b[off:], sizeofCmsghdr+uint64(len(c.data)))
		binary.NativeEndian.PutUint32(b[off+8:], uint32(c.level))
		binary.NativeEndian.PutUint32(b[off+12:], uint32(c.typ))
		copy(b[off+sizeofCmsghdr:], c.data)
		off += cmsgAlign(sizeofCmsghdr + uint64(len(c.data)))
	}
	return b
}
