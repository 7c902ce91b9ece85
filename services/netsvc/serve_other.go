//go:build !linux || !(amd64 || arm64)

package netsvc

import (
	"context"
	"errors"
)

// Serve needs Linux's seccomp user notification on amd64 or arm64.
func (s *Server) Serve(ctx context.Context, listener int) error {
	return errors.New("netsvc: serve: seccomp user notification needs linux on amd64 or arm64")
}
