package core

import (
	"fmt"
	"strings"
)

// Kind is the type of object a capability refers to. There are seven and no
// others; each has a fixed set of rights that mean something for it (see
// [Kind.Rights]).
type Kind uint8

// The object kinds.
const (
	KindImage   Kind = iota + 1 // a read-only root file system
	KindVolume                  // a writable directory tree
	KindListen                  // accepting connections on one host address and port
	KindEgress                  // connecting to a set of destinations
	KindFactory                 // a quota from which spaces and sub-factories are made
	KindSpawn                   // starting processes inside the holder's container
	KindLog                     // a log stream
)

var kindNames = [...]string{"", "image", "volume", "listen", "egress", "factory", "spawn", "log"}

// String returns the kind's lower-case name, e.g. "volume".
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Rights is a bitmask of what the holder of a capability may do with it.
// Every operation checks rights before anything else; rights can be dropped
// (by [Core.Derive]) but never added.
type Rights uint32

// The rights. Each kind accepts only those listed by [Kind.Rights], so a
// right also pins the kind: a capability with RightListen is a listen grant.
const (
	RightRead    Rights = 1 << iota // read an image, volume or log
	RightWrite                      // write a volume; append to a log
	RightExecute                    // execute files of an image
	RightListen                     // bind and accept on a listen grant
	RightConnect                    // connect under an egress grant
	RightSpawn                      // start a process with a spawn right
	RightCreate                     // make spaces and sub-factories from a factory
	RightDerive                     // derive further capabilities from this one

	rightsAll = RightDerive<<1 - 1
)

var rightNames = [...]string{"read", "write", "execute", "listen", "connect", "spawn", "create", "derive"}

// Rights returns every right that is meaningful for objects of kind k;
// capabilities of kind k never hold any other. It returns 0 for an unknown
// kind.
func (k Kind) Rights() Rights {
	switch k {
	case KindImage:
		return RightRead | RightExecute | RightDerive
	case KindVolume, KindLog:
		return RightRead | RightWrite | RightDerive
	case KindListen:
		return RightListen | RightDerive
	case KindEgress:
		return RightConnect | RightDerive
	case KindFactory:
		return RightCreate | RightDerive
	case KindSpawn:
		return RightSpawn | RightDerive
	}
	return 0
}

// Has reports whether r holds every right in need.
func (r Rights) Has(need Rights) bool { return need&^r == 0 }

// String returns the rights joined by "|", e.g. "read|write", or "none".
func (r Rights) String() string {
	if r == 0 {
		return "none"
	}
	var names []string
	for i, n := range rightNames {
		if r&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if rest := r &^ rightsAll; rest != 0 {
		names = append(names, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(names, "|")
}
