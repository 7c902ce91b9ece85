package main

// #include "execproxy.h"
import "C"

// execProxyEnv, present in the environment, makes the oak binary exec -d's
// proxy (execproxy.c) before the Go runtime starts.
const execProxyEnv = C.OAK_EXEC_PROXY_ENV
