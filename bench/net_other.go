//go:build !linux

package bench

import (
	"context"
	"errors"
)

// startRuncServer is Linux-only: it makes a network namespace, links and
// iptables rules.
func startRuncServer(context.Context, NetConfig, *netEnv) (*netServer, string, error) {
	return nil, "needs Linux", nil
}

// tcpRetransSegs reads the host's retransmission counter, on Linux only.
func tcpRetransSegs() (int64, error) { return 0, errors.New("not on Linux") }
