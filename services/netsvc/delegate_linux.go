//go:build linux && (amd64 || arm64)

package netsvc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox/nsinit"
)

// delegate is the service's end of a container's local-socket channel: it
// asks the container's init to bind or connect one of the container's
// AF_UNIX sockets as a caller would have (see local_linux.go and nsinit.c
// serve_local), and routes the answers to the waiting calls.
type delegate struct {
	f       *os.File
	mu      sync.Mutex
	next    uint32
	waiting map[uint32]chan int32
	closed  bool
}

func newDelegate(f *os.File) *delegate {
	d := &delegate{f: f, waiting: map[uint32]chan int32{}}
	go d.read()
	return d
}

func (d *delegate) read() {
	buf := make([]byte, 64)
	for {
		n, _, _, _, err := unix.Recvmsg(int(d.f.Fd()), buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		if n < 12 || binary.LittleEndian.Uint32(buf) != nsinit.LocalDone {
			continue
		}
		id, val := binary.LittleEndian.Uint32(buf[4:]), int32(binary.LittleEndian.Uint32(buf[8:]))
		d.mu.Lock()
		if c, ok := d.waiting[id]; ok {
			delete(d.waiting, id)
			c <- val
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.closed = true
	for id, c := range d.waiting {
		delete(d.waiting, id)
		close(c)
	}
	d.mu.Unlock()
}

// creds are the ids a caller acts with on files, in its user namespace.
type creds struct {
	uid, gid uint32
	groups   []uint32
}

// do makes the call op (nsinit.LocalBind or LocalConnect) on sock with addr,
// in the working directory cwd and with the ids of cr, through the
// container's init, and returns the call's own error.
func (d *delegate) do(op uint32, sock, cwd int, cr creds, addr []byte) error {
	if len(cr.groups) > nsinit.LocalMaxGroups {
		cr.groups = cr.groups[:nsinit.LocalMaxGroups]
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errGone
	}
	d.next++
	id := d.next
	answer := make(chan int32, 1)
	d.waiting[id] = answer
	msg := make([]byte, 0, 24+4*len(cr.groups)+len(addr))
	for _, v := range []uint32{op, id, cr.uid, cr.gid, uint32(len(cr.groups)), uint32(len(addr))} {
		msg = binary.LittleEndian.AppendUint32(msg, v)
	}
	for _, g := range cr.groups {
		msg = binary.LittleEndian.AppendUint32(msg, g)
	}
	msg = append(msg, addr...)
	err := unix.Sendmsg(int(d.f.Fd()), msg, unix.UnixRights(sock, cwd), nil, 0)
	if err != nil {
		delete(d.waiting, id)
	}
	d.mu.Unlock()
	if err != nil {
		return failure{eacces, &opError{"local-socket channel", err}}
	}
	v, ok := <-answer
	if !ok {
		return errGone // the container ended
	}
	if v < 0 {
		return unix.Errno(-v)
	}
	return nil
}

// callerCreds reads the file-system ids of thread tid, translated into its
// user namespace, and opens its working directory.
func callerCreds(tid int) (creds, int, error) {
	var cr creds
	dir := "/proc/" + strconv.Itoa(tid)
	f, err := os.Open(dir + "/status")
	if err != nil {
		return cr, -1, errGone
	}
	defer f.Close()
	var uid, gid uint32
	var groups []uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		switch {
		case k == "Uid" && len(fs) == 4:
			uid = parseID(fs[3])
		case k == "Gid" && len(fs) == 4:
			gid = parseID(fs[3])
		case k == "Groups":
			for _, g := range fs {
				groups = append(groups, parseID(g))
			}
		}
	}
	umap, err1 := readIDMap(dir + "/uid_map")
	gmap, err2 := readIDMap(dir + "/gid_map")
	if err := errors.Join(err1, err2); err != nil {
		return cr, -1, failure{eacces, err}
	}
	var ok bool
	if cr.uid, ok = umap.inside(uid); !ok {
		return cr, -1, failure{eacces, fmt.Errorf("uid %d of thread %d is not in its namespace", uid, tid)}
	}
	if cr.gid, ok = gmap.inside(gid); !ok {
		return cr, -1, failure{eacces, fmt.Errorf("gid %d of thread %d is not in its namespace", gid, tid)}
	}
	for _, g := range groups {
		if in, ok := gmap.inside(g); ok {
			cr.groups = append(cr.groups, in)
		}
	}
	cwd, err := unix.Open(dir+"/cwd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return cr, -1, failure{eacces, &opError{"open the caller's working directory", err}}
	}
	return cr, cwd, nil
}

func parseID(s string) uint32 {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return ^uint32(0)
	}
	return uint32(v)
}

// idMap is a /proc/PID/uid_map: inside, outside, count per line.
type idMap [][3]uint32

func readIDMap(path string) (idMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m idMap
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 {
			m = append(m, [3]uint32{parseID(f[0]), parseID(f[1]), parseID(f[2])})
		}
	}
	return m, nil
}

// inside translates a host id into the namespace the map describes.
func (m idMap) inside(id uint32) (uint32, bool) {
	for _, e := range m {
		if id >= e[1] && uint64(id) < uint64(e[1])+uint64(e[2]) {
			return e[0] + (id - e[1]), true
		}
	}
	return 0, false
}
