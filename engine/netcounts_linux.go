package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/services/netsvc"
)

// A container's network counters live in containers/ID/netcalls, a small
// file that its supervisor and its network service map shared
// (MAP_SHARED) and count into with atomic adds: the trapped calls the
// service answered, by call and outcome (a netsvc.Tally), and how many
// times the supervisor restarted the service. The service is a process
// of its own, restarted when it dies, so counters in its memory would be
// lost with it; in the file they survive it, the supervisor, and a
// restart of the container (the counts are the container's, until oak
// rm). The daemon maps the file read-only at scrape time, so neither the
// supervisor nor the service is asked anything.
//
// Layout: 8 bytes of magic, the restarts as a uint64, then the tally
// (netsvc.TallyBytes). A file of another size or magic (an older layout)
// is started again from zero by the next supervisor.
//
// The network service holds the file open for writing, so a service
// that was taken over could truncate it under the other mappings, and a
// read of a page past the end of a file faults (SIGBUS). The supervisor
// and the daemon therefore touch their mappings only through faultSafe:
// a count lost, never the process.
const (
	netCountsFile  = "netcalls"
	netCountsMagic = "oaknet1\n"
	netCountsTally = 16 // offset of the tally
)

var netCountsSize = netCountsTally + netsvc.TallyBytes

// netCounts is the writable mapping of a container's counters.
type netCounts struct {
	f        *os.File // kept open: handed to each network service as fd 6
	mem      []byte
	tally    *netsvc.Tally
	restarts *uint64
}

// openNetCounts maps the counters file at path for counting, making it
// (or starting it again from zero, if it is not of this layout) first.
// A nil *netCounts counts nothing; its methods accept it.
func openNetCounts(path string) (*netCounts, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network counters: %w", err)
	}
	n, err := mapNetCounts(f, true)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("network counters %s: %w", path, err)
	}
	return n, nil
}

// mapNetCounts maps f shared for writing; with init, a file that is not
// of this layout is cleared and given the magic (last, so that a reader
// sees either no counters or valid ones).
func mapNetCounts(f *os.File, init bool) (*netCounts, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fresh := st.Size() != int64(netCountsSize)
	if fresh {
		if !init {
			return nil, fmt.Errorf("%d bytes, want %d", st.Size(), netCountsSize)
		}
		if err := f.Truncate(0); err != nil {
			return nil, err
		}
		if err := f.Truncate(int64(netCountsSize)); err != nil {
			return nil, err
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, netCountsSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if !bytes.Equal(mem[:8], []byte(netCountsMagic)) {
		if !init {
			unix.Munmap(mem)
			return nil, errors.New("not a counters file of this layout")
		}
		clear(mem)
		copy(mem, netCountsMagic)
	}
	tally, err := netsvc.NewTally(mem[netCountsTally:])
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return &netCounts{f: f, mem: mem, tally: tally, restarts: (*uint64)(unsafe.Pointer(&mem[8]))}, nil
}

// restarted counts one restart of the network service.
func (n *netCounts) restarted() {
	if n != nil {
		faultSafe(func() { atomic.AddUint64(n.restarts, 1) })
	}
}

// faultSafe runs f, which touches a shared mapping, and reports whether
// it finished: a fault (the file truncated under the mapping) ends f
// with a panic that faultSafe recovers, rather than the process.
func faultSafe(f func()) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	f()
	return true
}

func (n *netCounts) tallyOrNil() *netsvc.Tally {
	if n == nil {
		return nil
	}
	return n.tally
}

func (n *netCounts) file() *os.File {
	if n == nil {
		return nil
	}
	return n.f
}

func (n *netCounts) close() {
	if n != nil {
		unix.Munmap(n.mem)
		n.f.Close()
	}
}

// NetCounts are a container's network counters as the daemon exports
// them.
type NetCounts struct {
	// Restarts counts the restarts of its network service after the
	// service died (not its first start).
	Restarts uint64
	// Calls[c][o] counts the trapped calls netsvc.Calls[c] answered with
	// outcome netsvc.Outcomes[o].
	Calls [][]uint64
}

// NetCounts reads the network counters of container id (a full id, as
// ContainerInfo.ID), or an error satisfying errors.Is(err,
// os.ErrNotExist) if it has none (it never ran, or ran under an oak from
// before the counters).
func (e *Engine) NetCounts(id string) (*NetCounts, error) {
	if !validID(id) {
		return nil, fmt.Errorf("network counters: invalid container id %q", id)
	}
	f, err := os.Open(filepath.Join(e.dir(id), netCountsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != int64(netCountsSize) {
		return nil, fmt.Errorf("network counters of %s: %d bytes, want %d: %w", ShortID(id), st.Size(), netCountsSize, os.ErrNotExist)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, netCountsSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("network counters of %s: mmap: %w", ShortID(id), err)
	}
	defer unix.Munmap(mem)
	nc, err := readNetCounts(mem)
	if err != nil {
		return nil, fmt.Errorf("network counters of %s: %w", ShortID(id), err)
	}
	return nc, nil
}

// readNetCounts loads the counters of a mapping of a counters file.
func readNetCounts(mem []byte) (nc *NetCounts, err error) {
	if !faultSafe(func() {
		if !bytes.Equal(mem[:8], []byte(netCountsMagic)) {
			err = fmt.Errorf("not yet set up: %w", os.ErrNotExist)
			return
		}
		tally, terr := netsvc.NewTally(mem[netCountsTally:])
		if terr != nil {
			err = terr
			return
		}
		nc = &NetCounts{Restarts: atomic.LoadUint64((*uint64)(unsafe.Pointer(&mem[8])))}
		for c := range netsvc.Calls {
			row := make([]uint64, len(netsvc.Outcomes))
			for o := range row {
				row[o] = tally.Load(c, netsvc.Outcome(o))
			}
			nc.Calls = append(nc.Calls, row)
		}
	}) {
		return nil, errors.New("the file was truncated while it was read")
	}
	return nc, err
}
