package core

import (
	"errors"
	"fmt"
	"net/netip"
)

// Object is the immutable description of what a capability refers to: one
// of [Image], [Volume], [Listen], [Egress], [Factory], [Spawn] or [Log].
// The set is closed; no other package can add a kind.
type Object interface {
	Kind() Kind
	String() string
	validate() error // nil if the description is well formed
}

// Image is a read-only root file system.
type Image struct {
	Ref    string // image reference, e.g. "docker.io/library/alpine:3.20"
	RootFS string // host path of the unpacked root file system
}

// Volume is a writable directory tree managed by the storage service.
type Volume struct {
	Name string
}

// Listen grants accepting connections (tcp) or datagrams (udp) on HostIP
// and HostPort of the host, delivered to ContainerPort in the container.
// A zero HostIP means every host address of both families; a zero HostPort
// means a free port the engine picks when the container starts.
type Listen struct {
	Proto         string // "tcp" or "udp"
	ContainerPort uint16
	HostIP        netip.Addr
	HostPort      uint16
}

// Egress grants connecting to destinations in Prefix (or anywhere, if Any)
// on Port (0: any port) with Proto ("tcp", "udp", or "" for both).
type Egress struct {
	Proto  string
	Prefix netip.Prefix // zero if Any
	Port   uint16
	Any    bool
}

// Factory is a quota from which spaces and sub-factories are made. Quota is
// the factory's limit; what remains of it is kept by the [Core].
type Factory struct {
	Quota Quota
}

// Spawn grants starting processes inside the holder's own container.
type Spawn struct{}

// Log is the log stream of a container.
type Log struct{}

// Kind returns KindImage.
func (Image) Kind() Kind { return KindImage }

// Kind returns KindVolume.
func (Volume) Kind() Kind { return KindVolume }

// Kind returns KindListen.
func (Listen) Kind() Kind { return KindListen }

// Kind returns KindEgress.
func (Egress) Kind() Kind { return KindEgress }

// Kind returns KindFactory.
func (Factory) Kind() Kind { return KindFactory }

// Kind returns KindSpawn.
func (Spawn) Kind() Kind { return KindSpawn }

// Kind returns KindLog.
func (Log) Kind() Kind { return KindLog }

// String returns the image reference, or the root file system path if the
// reference is empty.
func (o Image) String() string {
	if o.Ref != "" {
		return o.Ref
	}
	return o.RootFS
}

// String returns the volume name.
func (o Volume) String() string { return o.Name }

// String returns the quota.
func (o Factory) String() string { return o.Quota.String() }

// String returns "spawn".
func (Spawn) String() string { return "spawn" }

// String returns "log".
func (Log) String() string { return "log" }

func (o Image) validate() error {
	if o.Ref == "" && o.RootFS == "" {
		return errors.New("image has neither reference nor root file system")
	}
	return nil
}

func (o Volume) validate() error {
	if o.Name == "" {
		return errors.New("volume has no name")
	}
	return nil
}

func (o Listen) validate() error {
	switch {
	case o.Proto != "tcp" && o.Proto != "udp":
		return fmt.Errorf("listen protocol %q is not tcp or udp", o.Proto)
	case o.ContainerPort == 0:
		return errors.New("listen container port is 0")
	case o.HostIP.Zone() != "":
		return fmt.Errorf("listen host IP %s has a zone", o.HostIP)
	}
	return nil
}

func (o Egress) validate() error {
	switch {
	case o.Proto != "" && o.Proto != "tcp" && o.Proto != "udp":
		return fmt.Errorf("egress protocol %q is not tcp, udp or empty", o.Proto)
	case o.Any && o.Prefix.IsValid():
		return fmt.Errorf("egress to any destination also names prefix %s", o.Prefix)
	case !o.Any && !o.Prefix.IsValid():
		return errors.New("egress has no destination")
	case !o.Any && o.Prefix != o.Prefix.Masked():
		return fmt.Errorf("egress prefix %s has host bits set", o.Prefix)
	}
	return nil
}

// Within reports whether o is a part of of: what a capability to o allows
// is allowed by one to of. An egress grant is within another if its
// protocol is the other's (or the other's allows both), its port is the
// other's (or the other's allows any), and its destinations are the
// other's (any) or a prefix inside the other's prefix. Any other object
// is within only an equal one; a factory never, as it carries quota
// that [Core.NewFactory] hands out.
func Within(o, of Object) bool {
	if o == nil || of == nil || o.Kind() == KindFactory {
		return false
	}
	e, ok := o.(Egress)
	p, pok := of.(Egress)
	if !ok || !pok {
		return o == of
	}
	switch {
	case p.Proto != "" && p.Proto != e.Proto:
		return false
	case p.Port != 0 && p.Port != e.Port:
		return false
	case p.Any:
		return true
	case e.Any:
		return false
	}
	return p.Prefix.Bits() <= e.Prefix.Bits() && p.Prefix.Contains(e.Prefix.Addr())
}

func (Factory) validate() error { return nil }
func (Spawn) validate() error   { return nil }
func (Log) validate() error     { return nil }

// Quota is an amount of host resources. A factory carries one as its limit;
// the host enforces it on every container made from the factory.
type Quota struct {
	MemoryBytes uint64
	Tasks       uint64 // processes and threads
	CPUMilli    uint64 // CPU share in thousandths of a CPU
	DiskBytes   uint64
	Caps        uint64 // capabilities held in spaces, plus those given to sub-factories
}

// Unlimited, as a field of a [Quota], bounds nothing of its own: a factory
// unlimited in a resource is held only by its parent's bound of it (the
// root factory's, by the host's). Only a factory unlimited in a resource
// can make a sub-factory unlimited in it, and such a sub-factory reserves
// none of its parent's: a limited part of a whole is carved out of what
// remains, an unlimited one shares the whole.
const Unlimited = ^uint64(0)

var quotaNames = [...]string{"memory bytes", "tasks", "CPU millicores", "disk bytes", "capabilities"}

func (q *Quota) fields() [5]*uint64 {
	return [5]*uint64{&q.MemoryBytes, &q.Tasks, &q.CPUMilli, &q.DiskBytes, &q.Caps}
}

// String returns the quota as "memory=… tasks=… cpu=…m disk=… caps=…",
// each field a number or "unlimited".
func (q Quota) String() string {
	v := func(n uint64) string {
		if n == Unlimited {
			return "unlimited"
		}
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("memory=%s tasks=%s cpu=%sm disk=%s caps=%s",
		v(q.MemoryBytes), v(q.Tasks), v(q.CPUMilli), v(q.DiskBytes), v(q.Caps))
}

// exceeds returns an error naming the first resource in which q is larger
// than remaining, or nil if q fits. An unlimited remaining holds anything;
// an unlimited request fits only there.
func (q Quota) exceeds(remaining Quota) error {
	a, b := q.fields(), remaining.fields()
	for i := range a {
		if *a[i] > *b[i] {
			if *a[i] == Unlimited {
				return fmt.Errorf("%w: unlimited %s requested, %d remaining", ErrQuotaExceeded, quotaNames[i], *b[i])
			}
			return fmt.Errorf("%w: %d %s requested, %d remaining", ErrQuotaExceeded, *a[i], quotaNames[i], *b[i])
		}
	}
	return nil
}

// overflows returns an error naming the first resource in which adding q
// to used would reach Unlimited: the bound on the sum under an unlimited
// factory, which is otherwise only the host's.
func (q Quota) overflows(used Quota) error {
	a, b := q.fields(), used.fields()
	for i := range a {
		if *a[i] != Unlimited && *a[i] >= Unlimited-*b[i] {
			return fmt.Errorf("%w: %d %s requested, %d given out already: the sum would overflow", ErrQuotaExceeded, *a[i], quotaNames[i], *b[i])
		}
	}
	return nil
}

// plus returns q+r field by field; minus returns q-r. An Unlimited field
// of q stays Unlimited, and an Unlimited field of r counts as nothing (an
// unlimited sub-factory reserves nothing). Callers guarantee that neither
// overflows: sums stay within a limit (or below Unlimited, see overflows),
// and r ≤ q.
func (q Quota) plus(r Quota) Quota {
	a, b := q.fields(), r.fields()
	for i := range a {
		if *a[i] != Unlimited && *b[i] != Unlimited {
			*a[i] += *b[i]
		}
	}
	return q
}

func (q Quota) minus(r Quota) Quota {
	a, b := q.fields(), r.fields()
	for i := range a {
		if *a[i] != Unlimited && *b[i] != Unlimited {
			*a[i] -= *b[i]
		}
	}
	return q
}
