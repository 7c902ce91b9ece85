package main

// #include "execproxy.h"
import "C"

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// execProxyEnv, present in the environment, makes the oak binary exec -d's
// proxy (execproxy.c) before the Go runtime starts. Its value is the list
// of signals the proxy passes on (signalList), so that the list has one
// source: engine.ForwardedSignals.
const execProxyEnv = C.OAK_EXEC_PROXY_ENV

// signalList is sigs as decimal numbers separated by commas.
func signalList(sigs []os.Signal) string {
	var b strings.Builder
	for i, s := range sigs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(s.(syscall.Signal))))
	}
	return b.String()
}
