package policy

import (
	"fmt"
	"runtime"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Program returns the container seccomp filter (see Compile) in the form
// seccomp(SECCOMP_SET_MODE_FILTER) takes: point a unix.SockFprog at it.
// It is the same for every container. It fails on hosts other than x86_64,
// where the filter would kill every process at its first system call.
func Program() ([]unix.SockFilter, error) { return program(Compile) }

// PodNetworkProgram is Program for the pod-network policy
// (PodNetworkTable), the filter of a container that joined a network
// namespace its caller made for it.
func PodNetworkProgram() ([]unix.SockFilter, error) { return program(CompilePodNetwork) }

func program(compile func() ([]bpf.Instruction, error)) ([]unix.SockFilter, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp policy: written for x86_64 system calls, not %s", runtime.GOARCH)
	}
	prog, err := compile()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, err
	}
	return toSockFilter(raw), nil
}

func toSockFilter(raw []bpf.RawInstruction) []unix.SockFilter {
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}
