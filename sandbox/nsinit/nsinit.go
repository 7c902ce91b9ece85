// Package nsinit links the container-side half of Oak's launch path into the
// oak binary. Its C constructor (nsinit.c) runs before the Go runtime starts
// and returns at once unless the process was started by the sandbox package
// as a container's first process; then it never returns to Go.
//
// Importing this package for its side effect is all a main package does.
package nsinit

// #cgo CFLAGS: -O2 -Wall -Werror
import "C"
