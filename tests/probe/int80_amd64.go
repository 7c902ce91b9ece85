//go:build linux

package main

// int80 makes system call nr of the i386 ABI with int $0x80 and returns
// the raw result (a negative errno on failure).
func int80(nr, a1, a2, a3 uintptr) uintptr

const haveInt80 = true
