// The environment variable that makes the oak binary exec -d's proxy (see
// execproxy.c), read by Go and C alike.
#ifndef OAK_EXECPROXY_H
#define OAK_EXECPROXY_H
#define OAK_EXEC_PROXY_ENV "_OAK_EXEC_PROXY"
#endif
