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

// The kinds of op. launch_linux.go writes each as its record of the task
// description (nsinit.TagMount and so on, from nsinit's wire.h).
const (
	opMount opKind = iota
	opMkfile
	opMkdir
	opSymlink
)

// devices are the only device nodes a container gets: bind mounts of the
// host's harmless character devices.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// maskedFiles and maskedDirs in /proc show host kernel state that a
// container's own namespaces do not scope, so each is covered by /dev/null
// (reads as empty) or an empty read-only tmpfs. The whole /proc, /proc/sys
// included, is mounted read-only, so what stays visible cannot be changed.
//
// Masked (docker's defaults are kcore, keys, latency_stats, timer_list,
// timer_stats, sched_debug, acpi, asound, scsi and, lately, interrupts; Oak
// masks the whole class):
//   - memory images and kernel addresses: kcore, kpage*, kallsyms, modules,
//     iomem, ioports, dma, mtrr, vmallocinfo;
//   - allocator state that helps to groom the kernel heap: slabinfo,
//     buddyinfo, pagetypeinfo, zoneinfo;
//   - the host's boot and hardware: cmdline (the boot line names the root
//     device and may carry secrets), config.gz, devices, misc, consoles,
//     partitions, swaps (host paths of swap files);
//   - activity of the whole host, a side channel on its other tenants:
//     diskstats, interrupts, softirqs, schedstat, timer_list, sched_debug,
//     latency_stats, pressure/ (system-wide stall figures);
//   - keys, key-users, kmsg, sysrq-trigger; sys/kernel/random/boot_id,
//     which names this boot of this host to anyone who compares.
//
// Left visible on purpose: version (it adds to uname(2)'s release and
// version only the compiler and build host of the distribution's kernel,
// and programs read it for the kernel release, so masking it would break
// them for nothing); meminfo, cpuinfo, stat, loadavg, uptime, vmstat
// (libc's sysconf, free, top, JVMs and Go read them, and sysinfo(2) gives the
// same totals); filesystems, cgroups, crypto, execdomains (what this kernel
// supports, as uname does); locks (the kernel lists only locks of processes
// in the reader's pid namespace). kptr_restrict is the host's setting, and
// /proc/sys is read-only here: the files that print real kernel addresses
// (kallsyms, modules, vmallocinfo, iomem, timer_list) are masked above, and
// with kptr_restrict 0 every other %pK field (/proc/net/unix, netlink, ...)
// prints a hashed value, not an address.
var maskedFiles = []string{
	"kcore", "keys", "key-users", "timer_list", "sched_debug", "latency_stats",
	"kallsyms", "kpagecount", "kpageflags", "kpagecgroup", "sysrq-trigger", "config.gz",
	"cmdline", "iomem", "ioports", "dma", "mtrr", "modules", "vmallocinfo",
	"slabinfo", "buddyinfo", "pagetypeinfo", "zoneinfo",
	"devices", "misc", "consoles", "partitions", "swaps",
	"diskstats", "interrupts", "softirqs", "schedstat", "kmsg",
	"sys/kernel/random/boot_id",
}
var maskedDirs = []string{"acpi", "scsi", "asound", "firmware", "bus", "irq", "fs", "driver", "pressure"}

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
	for _, p := range t.ReadOnlyPaths {
		// Source "." is the target itself: bound onto itself, then made
		// read-only.
		ops = append(ops,
			op{kind: opMount, source: ".", target: p[1:], flags: unix.MS_BIND | unix.MS_REC, optional: true},
			op{kind: opMount, source: ".", target: p[1:], flags: bindRO, optional: true})
	}
	return ops
}
