package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// A refusal is a docker run flag that would give a container authority
// outside itself. Oak never grants that; the flag exists so that a user
// who types it by reflex learns why, and what to use instead.
type refusal struct {
	name     string
	boolean  bool     // a switch, refused when set
	repeated bool     // may be given more than once
	allowed  []string // values that ask for nothing Oak does not already do
	why      string
	instead  string
}

// instead of host authority: the grants every container can be given.
const useGrants = "grant it what it needs instead: -p/--publish to listen, --egress to connect, -v VOLUME:/PATH for files"

var runRefusals = []refusal{
	{name: "privileged", boolean: true,
		why:     "Oak never gives a container authority over the host",
		instead: useGrants},
	{name: "cap-add", repeated: true,
		why:     "Oak adds no capabilities: a container's root holds only its own files' and users' capabilities, inside its own user namespace",
		instead: useGrants},
	{name: "security-opt", repeated: true, allowed: []string{"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"},
		why:     "every container has the same confinement (one system-call allowlist, no capabilities, no_new_privs), which no option loosens",
		instead: useGrants},
	{name: "device", repeated: true,
		why:     "a container gets no host devices, only null, zero, full, random and urandom",
		instead: "use -v VOLUME:/PATH to share data"},
	{name: "network", allowed: []string{"none"},
		why:     "a container has no network but its grants; it never joins the host's network or a bridge",
		instead: "use -p/--publish [HOSTIP:]HOSTPORT:PORT to listen and --egress PREFIX[:PORT] to connect"},
	{name: "pid", allowed: []string{"private"},
		why:     "a container sees only its own processes, never the host's or another container's",
		instead: "use oak logs, oak wait and oak kill from the host"},
	{name: "ipc", allowed: []string{"private", "none"},
		why:     "a container's System V IPC and /dev/shm are its own, shared with no host or container",
		instead: "use -v VOLUME:/PATH to share data"},
	{name: "uts", allowed: []string{"private"},
		why:     "a container's host name is its own",
		instead: "use --hostname NAME"},
	{name: "userns", allowed: []string{"private"},
		why:     "a container's ids are its own block of host ids, never the host's (its root is no host root)",
		instead: "use -u/--user to pick the user inside"},
}

// usage is the flag's help: one line saying it is refused and why.
func (r refusal) usage() string {
	if len(r.allowed) > 0 {
		return "refused unless " + strings.Join(r.allowed, " or ") + ": " + r.why
	}
	return "refused: " + r.why
}

// addRefusals defines the refused flags on fs.
func addRefusals(fs *pflag.FlagSet) {
	for _, r := range runRefusals {
		switch {
		case r.boolean:
			fs.Bool(r.name, false, r.usage())
		case r.repeated:
			fs.StringArray(r.name, nil, r.usage())
		default:
			fs.String(r.name, r.allowed[0], r.usage())
		}
	}
}

// checkRefusals fails on the first refused flag set to a value Oak does
// not already give every container, naming why and what to use.
func checkRefusals(fs *pflag.FlagSet) error {
	for _, r := range runRefusals {
		f := fs.Lookup(r.name)
		if f == nil || !f.Changed {
			continue
		}
		var vals []string
		switch v := f.Value.(type) {
		case pflag.SliceValue:
			vals = v.GetSlice()
		default:
			vals = []string{f.Value.String()}
		}
		for _, v := range vals {
			if r.boolean && v == "false" || slices.Contains(r.allowed, v) {
				continue
			}
			arg := "--" + r.name
			if !r.boolean {
				arg += " " + v
			}
			return fmt.Errorf("run: %s refused: %s; %s", arg, r.why, r.instead)
		}
	}
	return nil
}
