// pause: the pod sandbox's process for the CRI test (containerd's
// sandbox_image). It holds the pod's namespaces by staying alive: it sleeps
// until SIGINT or SIGTERM ends it, and reaps any child that is handed to it.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction end = {.sa_handler = stop}, child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
	if (sigaction(SIGINT, &end, NULL) != 0 || sigaction(SIGTERM, &end, NULL) != 0 ||
	    sigaction(SIGCHLD, &child, NULL) != 0)
		return 1;
	for (;;)
		pause();
}
