// Package nsinit links the container-side half of Oak's launch path into the
// oak binary. Its C constructor (nsinit.c) runs before the Go runtime starts
// and returns at once unless the process was started by the sandbox package
// as a container's first process; then it never returns to Go.
//
// Importing this package for its side effect is all a main package does.
package nsinit

// #cgo CFLAGS: -O2 -Wall -Werror
import "C"

// EnvVar is the variable whose presence turns an oak process into a
// container's init; fd 3 then carries the task description.
const EnvVar = "_OAK_NSINIT"

// ServiceEnvVar, set to a service kind ("net"), confines an oak process
// as that user-level service before the Go runtime starts (service.c): an
// empty read-only root, only the capabilities the kind needs, no_new_privs.
const ServiceEnvVar = "_OAK_SERVICE"
