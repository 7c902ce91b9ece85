package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/sandbox"
	"github.com/oak-engine/oak/sandbox/policy"
)

// diskUsage is the host space the tree at dir occupies: allocated blocks,
// each hard-linked file counted once. Entries that vanish meanwhile are
// skipped.
func diskUsage(dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil // gone since it was listed
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			k := inode{st.Dev, st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Blocks * 512
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return total, err
}

// Usage is one line of oak system df.
type Usage struct {
	Type   string // Images, Containers, Volumes
	Total  int
	Active int   // images and volumes some container uses; running containers
	Size   int64 // bytes on the host's disk
}

// DiskUsage counts the state root's images, containers and volumes and the
// host disk space each kind takes: unpacked layers and the demo image;
// container records and logs (a container's writable layer is in memory,
// charged to its memory limit, and takes no disk); volume images as
// allocated.
func (e *Engine) DiskUsage() ([]Usage, error) {
	cs, err := e.ListContainers(Filter{})
	if err != nil {
		return nil, err
	}
	imgs, err := e.ListImages()
	if err != nil {
		return nil, err
	}
	vols, err := e.ListVolumes()
	if err != nil {
		return nil, err
	}
	usedImages, usedVolumes := map[string]bool{}, map[string]bool{}
	running := 0
	for _, c := range cs {
		if c.State.Running {
			running++
		}
		if c.Image != "" {
			usedImages[c.Image] = true
		} else {
			usedImages[c.Config.Image] = true // demo
		}
		for _, m := range c.Mounts {
			usedVolumes[m.Name] = true
		}
	}
	u := []Usage{{Type: "Images", Total: len(imgs)}, {Type: "Containers", Total: len(cs), Active: running},
		{Type: "Volumes", Total: len(vols)}}
	for _, img := range imgs {
		if usedImages[img.Id] || img.Id == "" && usedImages[DemoImage] {
			u[0].Active++
		}
	}
	if u[0].Size, err = diskUsage(filepath.Join(e.Root, "images")); err != nil {
		return nil, fmt.Errorf("system df: %w", err)
	}
	if u[1].Size, err = diskUsage(filepath.Join(e.Root, "containers")); err != nil {
		return nil, fmt.Errorf("system df: %w", err)
	}
	for _, v := range vols {
		u[2].Size += v.Allocated
		if usedVolumes[v.Name] {
			u[2].Active++
		}
	}
	return u, nil
}

// SystemInfo is what oak info shows.
type SystemInfo struct {
	StateRoot         string
	Containers        int
	ContainersRunning int
	ContainersExited  int
	Images            int // the demo image included
	Volumes           int
	Kernel            string // the host kernel's release
	CgroupMode        string // v1 or v2: what enforces the limits
	Syscalls          SyscallInfo
	Defaults          DefaultLimits
}

// SyscallInfo summarises the one system-call allowlist every container has.
type SyscallInfo struct {
	Total       int // x86_64 system calls known
	Allowed     int // reachable whatever the arguments
	Conditional int // reachable for some arguments
	Notify      int // served by Oak's services
	Refused     int
}

// DefaultLimits are what a container gets when its run sets none.
type DefaultLimits struct {
	Memory      int64 // bytes
	PidsLimit   int64
	TmpfsSize   int64 // bytes
	StorageSize int64 // bytes of the writable layer
	LogMaxSize  int64
	LogMaxFile  int
}

// Info describes the engine, its state root and the host.
func (e *Engine) Info() (*SystemInfo, error) {
	cs, err := e.ListContainers(Filter{})
	if err != nil {
		return nil, err
	}
	imgs, err := e.ListImages()
	if err != nil {
		return nil, err
	}
	vols, err := e.ListVolumes()
	if err != nil {
		return nil, err
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	st := policy.Stats()
	log := DefaultLogOptions()
	si := &SystemInfo{StateRoot: e.Root, Containers: len(cs), Images: len(imgs), Volumes: len(vols),
		Kernel: unix.ByteSliceToString(uts.Release[:]), CgroupMode: sandbox.CgroupMode(),
		Syscalls: SyscallInfo{Total: st.Total, Allowed: st.Allowed, Conditional: st.Conditional, Notify: st.Notify, Refused: st.Refused},
		Defaults: DefaultLimits{Memory: DefaultMemoryBytes, PidsLimit: DefaultPids, TmpfsSize: sandbox.DefaultTmpfsBytes,
			StorageSize: sandbox.DefaultWritableBytes, LogMaxSize: log.MaxSize, LogMaxFile: log.MaxFile}}
	for _, c := range cs {
		switch c.State.Status {
		case StatusRunning:
			si.ContainersRunning++
		case StatusExited:
			si.ContainersExited++
		}
	}
	return si, nil
}

// PruneContainers removes every exited container and returns the ids of
// those removed. Running, created and broken ones are left alone; a
// container removed meanwhile by another oak is passed over.
func (e *Engine) PruneContainers() ([]string, error) {
	cs, err := e.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, c := range cs {
		if c.Status != StatusExited {
			continue
		}
		if err := e.Remove(c.ID, false); err != nil {
			if !errors.Is(err, ErrNoSuchContainer) {
				errs = append(errs, err)
			}
			continue
		}
		removed = append(removed, c.ID)
	}
	return removed, errors.Join(errs...)
}
