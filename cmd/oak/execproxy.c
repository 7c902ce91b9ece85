// exec -d's proxy: oak-runtime exec -d leaves this process for its caller
// (conmon, containerd's shim), who waits for its pid as its own child and
// signals it, while the process it stands for is a child of the
// container's init. It runs as a constructor of the oak binary, before the
// Go runtime would start (a proxy per exec'd process costs no Go runtime:
// one thread, no heap to speak of), and never returns.
//
// fd 3 is the exec connection to the container's supervisor (the control
// socket's exec request, answered with its pid already): each signal the
// proxy catches goes out as {"signal":N}, and the answer {"exit":STATUS}
// ends the proxy with that status (128+N when signal N ended the process).
// A connection that ends otherwise means the container ended, which killed
// the process: 137. SIGKILL of the proxy closes the connection, and the
// supervisor kills the process (kill_on_close). fd 4 gets one byte once the
// signals are caught; only then is the proxy's pid written to --pid-file.

#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "execproxy.h"

#define CONN_FD 3
#define READY_FD 4

__attribute__((constructor)) static void exec_proxy(void)
{
	// Its value lists the signals passed on, "15,2,1,...": what a
	// supervisor passes to a container's command (engine.ForwardedSignals).
	const char *list = getenv(OAK_EXEC_PROXY_ENV);
	if (list == NULL)
		return;
	sigset_t set;
	sigemptyset(&set);
	for (const char *p = list; *p != 0;) {
		char *end;
		long sig = strtol(p, &end, 10);
		if (end == p || sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP || (*end != ',' && *end != 0))
			_exit(255); // not what oak writes
		sigaddset(&set, (int)sig);
		p = *end == ',' ? end + 1 : end;
	}
	sigaddset(&set, SIGPIPE); // a closed connection is seen by send, not as a signal
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		_exit(255);
	sigdelset(&set, SIGPIPE);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		_exit(255);
	char one = 1;
	if (write(READY_FD, &one, 1) != 1)
		_exit(255);
	close(READY_FD);

	char line[4096];
	size_t n = 0;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = CONN_FD, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0)
			continue; // EINTR
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) == sizeof si) {
				char msg[32];
				int len = snprintf(msg, sizeof msg, "{\"signal\":%u}\n", si.ssi_signo);
				send(CONN_FD, msg, len, MSG_NOSIGNAL); // a closed connection ends us below
			}
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t k = read(CONN_FD, line + n, sizeof line - 1 - n);
		if (k <= 0)
			_exit(128 + SIGKILL); // the supervisor, and with it the container, ended
		n += k;
		line[n] = 0;
		char *nl = strchr(line, '\n');
		if (nl == NULL) {
			if (n == sizeof line - 1)
				_exit(255); // not the supervisor's answer
			continue;
		}
		*nl = 0;
		const char *exit_key = "{\"exit\":";
		if (strncmp(line, exit_key, strlen(exit_key)) != 0)
			_exit(128 + SIGKILL); // an error: the container ended
		_exit(atoi(line + strlen(exit_key)) & 0xff);
	}
}
