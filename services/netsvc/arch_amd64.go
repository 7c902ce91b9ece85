//go:build linux

package netsvc

// nativeArch is the seccomp_data.arch of this build's system calls; the
// service serves no other ABI (syscall numbers and struct layouts differ).
const nativeArch = 0xc000003e // AUDIT_ARCH_X86_64
