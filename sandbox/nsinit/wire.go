package nsinit

// #include "wire.h"
import "C"

// The constants below are wire.h's, read by cgo: nsinit.c and service.c
// include the same header, so the two sides cannot drift apart.

// EnvVar is the variable whose presence turns an oak process into a
// container's init; fd 3 then carries the task description.
const EnvVar = C.OAK_NSINIT_ENV

// TraceEnvVar, present beside EnvVar, makes nsinit mark its phases on
// stderr in internal/trace's format.
const TraceEnvVar = C.OAK_TRACE_ENV

// ServiceEnvVar, set to a service kind ("net", "storage"), confines an oak
// process as that user-level service before the Go runtime starts
// (service.c): an empty read-only root, only the capabilities the kind
// needs, no_new_privs.
const ServiceEnvVar = C.OAK_SERVICE_ENV

// ExtraFDsEnvVar, set to N, says init got N descriptors at 4.. for the
// command's 3.. (--preserve-fds); MaxExtraFDs bounds N, and the extra
// descriptors of an exec request.
const (
	ExtraFDsEnvVar = C.OAK_EXTRA_FDS_ENV
	MaxExtraFDs    = C.OAK_MAX_EXTRA_FDS
)

// DefaultPath is the PATH nsinit searches for the command when the task's
// environment has none.
const DefaultPath = C.OAK_DEFAULT_PATH

// Record tags of the task description nsinit reads from fd 3.
const (
	TagEnd      = C.TAG_END
	TagRootFS   = C.TAG_ROOTFS
	TagMount    = C.TAG_MOUNT
	TagMkfile   = C.TAG_MKFILE
	TagMkdir    = C.TAG_MKDIR
	TagSymlink  = C.TAG_SYMLINK
	TagHostname = C.TAG_HOSTNAME
	TagCwd      = C.TAG_CWD
	TagArg      = C.TAG_ARG
	TagEnv      = C.TAG_ENV
	TagSeccomp  = C.TAG_SECCOMP
	TagUser     = C.TAG_USER
	TagVolume   = C.TAG_VOLUME
	TagCgroup   = C.TAG_CGROUP
	TagTTY      = C.TAG_TTY
	TagDropCaps = C.TAG_DROP_CAPS
	TagBind     = C.TAG_BIND
	TagHold     = C.TAG_HOLD
)

// UsernsEnvVar makes an oak process only hold its user namespace.
const UsernsEnvVar = C.OAK_USERNS_ENV

// Records nsinit sends back on fd 3.
const (
	ReportError    = C.REPORT_ERROR
	ReportListener = C.REPORT_LISTENER
	ReportExec     = C.REPORT_EXEC
	ReportControl  = C.REPORT_CONTROL
	ReportLocal    = C.REPORT_LOCAL
	ReportHeld     = C.REPORT_HELD
)

// Messages of the local-socket channel between the network service and a
// container's init.
const (
	LocalBind      = C.LOCAL_BIND
	LocalConnect   = C.LOCAL_CONNECT
	LocalDone      = C.LOCAL_DONE
	LocalMaxGroups = C.LOCAL_MAX_GROUPS
	UserMaxGroups  = C.USER_MAX_GROUPS
)

// Messages of the exec channel between the host and a container's init.
const (
	ExecStart   = C.EXEC_START
	ExecSignal  = C.EXEC_SIGNAL
	ExecStarted = C.EXEC_STARTED
	ExecExited  = C.EXEC_EXITED
	ExecFlagTTY = C.EXEC_FLAG_TTY
	ExecCommand = C.EXEC_COMMAND_ID
)
