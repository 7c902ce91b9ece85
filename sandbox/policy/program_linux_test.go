package policy

import (
	"runtime"
	"slices"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func TestProgramIsCompile(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		if _, err := Program(); err == nil {
			t.Fatalf("Program() on %s: no error", runtime.GOARCH)
		}
		t.Skipf("the policy is for x86_64; this is %s", runtime.GOARCH)
	}
	prog, err := Compile()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(filter, toSockFilter(raw)) {
		t.Fatal("Program() differs from Compile()")
	}
	// Run the exact SockFilter words through the VM as well.
	back := make([]bpf.RawInstruction, len(filter))
	for i, f := range filter {
		back[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	decoded, ok := bpf.Disassemble(back)
	if !ok {
		t.Fatal("Program() has words x/net/bpf cannot decode")
	}
	for _, d := range disagreements(t, decoded, table(), Decide) {
		t.Error(d)
	}
}

// The package spells Linux ABI values out so that it builds anywhere; check
// them against golang.org/x/sys/unix.
func TestLinuxConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		ours, sys uint64
	}{
		{"SECCOMP_RET_KILL_PROCESS", retKillProcess, unix.SECCOMP_RET_KILL_PROCESS},
		{"SECCOMP_RET_ERRNO", retErrno, unix.SECCOMP_RET_ERRNO},
		{"SECCOMP_RET_USER_NOTIF", retUserNotif, unix.SECCOMP_RET_USER_NOTIF},
		{"SECCOMP_RET_ALLOW", retAllow, unix.SECCOMP_RET_ALLOW},
		{"SECCOMP_RET_ACTION_FULL", retActionFull, unix.SECCOMP_RET_ACTION_FULL},
		{"SECCOMP_RET_DATA", retData, unix.SECCOMP_RET_DATA},
		{"AUDIT_ARCH_X86_64", auditArchX86_64, unix.AUDIT_ARCH_X86_64},
		{"AUDIT_ARCH_I386", auditArchI386, unix.AUDIT_ARCH_I386},
		{"AUDIT_ARCH_AARCH64", auditArchAArch64, unix.AUDIT_ARCH_AARCH64},
		{"BPF_MAXINSNS", MaxInstructions, unix.BPF_MAXINSNS},
		{"EPERM", uint64(EPERM), uint64(unix.EPERM)},
		{"EACCES", uint64(EACCES), uint64(unix.EACCES)},
		{"ENOSYS", uint64(ENOSYS), uint64(unix.ENOSYS)},
		{"ENOTTY", uint64(ENOTTY), uint64(unix.ENOTTY)},
		{"CLONE_NEWNS", cloneNewNS, unix.CLONE_NEWNS},
		{"CLONE_NEWCGROUP", cloneNewCgroup, unix.CLONE_NEWCGROUP},
		{"CLONE_NEWUTS", cloneNewUTS, unix.CLONE_NEWUTS},
		{"CLONE_NEWIPC", cloneNewIPC, unix.CLONE_NEWIPC},
		{"CLONE_NEWUSER", cloneNewUser, unix.CLONE_NEWUSER},
		{"CLONE_NEWPID", cloneNewPID, unix.CLONE_NEWPID},
		{"CLONE_NEWNET", cloneNewNet, unix.CLONE_NEWNET},
		{"AF_UNIX", afUnix, unix.AF_UNIX},
		{"MSG_FASTOPEN", msgFastOpen, unix.MSG_FASTOPEN},
		{"S_IFMT", sIFMT, unix.S_IFMT},
		{"S_IFREG", sIFREG, unix.S_IFREG},
		{"S_IFIFO", sIFIFO, unix.S_IFIFO},
	} {
		if c.ours != c.sys {
			t.Errorf("%s: package has %#x, golang.org/x/sys/unix %#x", c.name, c.ours, c.sys)
		}
	}
	// Every namespace flag clone(2) can carry is refused: CLONE_NEW* in
	// x/sys, less CLONE_NEWTIME, which clone reads as part of the exit signal.
	all := uint64(unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME)
	if cloneNewNamespaces != all&^unix.CLONE_NEWTIME || unix.CLONE_NEWTIME&^unix.CSIGNAL != 0 {
		t.Errorf("cloneNewNamespaces = %#x, want %#x", cloneNewNamespaces, all&^unix.CLONE_NEWTIME)
	}
	// The prctl options the table allows, by name.
	want := []uint64{
		unix.PR_SET_PDEATHSIG, unix.PR_GET_PDEATHSIG, unix.PR_GET_DUMPABLE, unix.PR_SET_DUMPABLE,
		unix.PR_GET_KEEPCAPS, unix.PR_SET_KEEPCAPS, unix.PR_SET_NAME, unix.PR_GET_NAME,
		unix.PR_GET_SECCOMP, unix.PR_SET_SECCOMP, unix.PR_CAPBSET_READ, unix.PR_CAPBSET_DROP,
		unix.PR_GET_SECUREBITS, unix.PR_SET_TIMERSLACK, unix.PR_GET_TIMERSLACK,
		unix.PR_SET_CHILD_SUBREAPER, unix.PR_GET_CHILD_SUBREAPER,
		unix.PR_SET_NO_NEW_PRIVS, unix.PR_GET_NO_NEW_PRIVS, unix.PR_GET_TID_ADDRESS,
		unix.PR_SET_THP_DISABLE, unix.PR_GET_THP_DISABLE, unix.PR_CAP_AMBIENT,
		unix.PR_GET_SPECULATION_CTRL, unix.PR_SET_MDWE, unix.PR_GET_MDWE,
		unix.PR_SET_VMA, unix.PR_GET_AUXV,
	}
	if !slices.Equal(prctlAllowed, want) {
		t.Errorf("prctlAllowed = %#x,\nwant %#x", prctlAllowed, want)
	}
}
