// Package api is the engine's service front end: the HTTP/JSON API that
// oak daemon serves on a unix socket in the state root, and the client
// the CLI talks to it with.
//
// Data flows one way, front end → engine: a request is decoded strictly
// (unknown fields, wrong types, trailing data and bodies above MaxBody are
// refused, naming the field), mapped onto the engine's own request type,
// and answered from the engine. The server keeps no container state: the
// records under the state root and the per-container supervisors (which
// outlive the daemon) are the truth, so a daemon that is killed or
// upgraded loses nothing, and the next one answers for every container.
//
// Only one daemon serves a state root: it holds an exclusive flock on
// ROOT/daemon.lock, which also records its pid. It listens on
// ROOT/oak.sock, mode 0600, root's, and on ROOT.tenants.sock, mode 0666,
// for tenants; on both, every request is its peer's (SO_PEERCRED): root
// reaches everything, a tenant its own containers, volumes and factories,
// anyone else nothing (auth.go). docs/daemon.md describes the service,
// docs/tenants.md tenants and docs/api.yaml the API.
package api
