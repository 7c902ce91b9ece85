package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// An op is one step of building a container's mount tree, carried out in
// order by nsinit before pivot_root. Targets are relative to the root and are
// resolved there without following symbolic links, so an image cannot
// redirect a step to a host path.
type op struct {
	kind     opKind
	source   string // mount source or symlink text
	target   string
	fstype   string
	flags    uintptr
	data     string
	optional bool // skip if the target does not exist
}

type opKind uint32

// Record tags of the task description nsinit.c reads; keep both in step.
const (
	tagEnd      = 0
	tagRootFS   = 1
	opMount     = opKind(2)
	opMkfile    = opKind(3)
	opMkdir     = opKind(4)
	opSymlink   = opKind(5)
	tagHostname = 6
	tagCwd      = 7
	tagArg      = 8
	tagEnv      = 9
	tagSeccomp  = 10
	tagUser     = 11
	tagVolume   = 12
	tagCgroup   = 13
	tagDropCaps = 15
)

// devices are the only device nodes a container gets: bind mounts of the
// host's harmless character devices.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// maskedFiles and maskedDirs in /proc leak host kernel state that a
// container's own pid namespace does not scope (memory images, key
// descriptions, timers, scheduler internals, kernel symbols).
var maskedFiles = []string{
	"kcore", "keys", "key-users", "timer_list", "sched_debug", "latency_stats",
	"kallsyms", "kpagecount", "kpageflags", "kpagecgroup", "sysrq-trigger", "config.gz",
}
var maskedDirs = []string{"acpi", "scsi", "asound", "firmware", "bus", "irq", "fs", "driver"}

const (
	nosuidNodev = unix.MS_NOSUID | unix.MS_NODEV
	bindRO      = unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY
)

// mountPlan lists the steps that build the container's tree: /proc of its
// own pid namespace (read-only, masked), a /dev holding only the devices
// above, /dev/shm and /tmp as size-limited tmpfs charged to the container's
// memory. The root itself arrives read-only (see sendRoot).
func mountPlan(t *Task) []op {
	tmpfs := t.Limits.TmpfsBytes
	if tmpfs <= 0 {
		tmpfs = DefaultTmpfsBytes
	}
	ops := []op{
		{kind: opMount, source: "proc", target: "proc", fstype: "proc", flags: nosuidNodev | unix.MS_NOEXEC | unix.MS_RDONLY},
	}
	for _, f := range maskedFiles {
		ops = append(ops, op{kind: opMount, source: "/dev/null", target: "proc/" + f, flags: unix.MS_BIND, optional: true})
	}
	for _, d := range maskedDirs {
		ops = append(ops, op{kind: opMount, source: "tmpfs", target: "proc/" + d, fstype: "tmpfs",
			flags: nosuidNodev | unix.MS_NOEXEC | unix.MS_RDONLY, data: "size=0,mode=555", optional: true})
	}
	ops = append(ops, op{kind: opMount, source: "tmpfs", target: "dev", fstype: "tmpfs",
		flags: unix.MS_NOSUID | unix.MS_NOEXEC, data: "mode=755,size=64k"})
	for _, d := range devices {
		ops = append(ops,
			op{kind: opMkfile, target: "dev/" + d},
			op{kind: opMount, source: "/dev/" + d, target: "dev/" + d, flags: unix.MS_BIND})
	}
	for _, l := range [][2]string{{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
		{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}} {
		ops = append(ops, op{kind: opSymlink, target: "dev/" + l[0], source: l[1]})
	}
	ops = append(ops,
		op{kind: opMkdir, target: "dev/shm"},
		op{kind: opMount, source: "shm", target: "dev/shm", fstype: "tmpfs",
			flags: nosuidNodev | unix.MS_NOEXEC, data: fmt.Sprintf("mode=1777,size=%d", tmpfs)},
		op{kind: opMount, source: "dev", target: "dev", flags: bindRO | unix.MS_NOSUID | unix.MS_NOEXEC},
		op{kind: opMount, source: "tmpfs", target: "tmp", fstype: "tmpfs",
			flags: nosuidNodev, data: fmt.Sprintf("mode=1777,size=%d", tmpfs)},
	)
	for _, p := range t.Tmpfs {
		ops = append(ops, op{kind: opMount, source: "tmpfs", target: p[1:], fstype: "tmpfs",
			flags: nosuidNodev, data: fmt.Sprintf("mode=755,size=%d", tmpfs)})
	}
	return ops
}
