// unixsock: an AF_UNIX round trip inside a container, from a program with
// one thread (as most C servers are when they set up their sockets) or,
// with "threads", from one with two.
//
//   unixsock [threads] stream|dgram PATH|@ABSTRACT
//
// It binds the name, (for stream) listens, forks a child that connects and
// sends "hi", receives it and prints "ok hi"; or "err STEP ERRNO-NAME" for
// the first step that failed.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EADDRINUSE: return "EADDRINUSE";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EINVAL: return "EINVAL";
	}
	return strerrorname_np(e) ? strerrorname_np(e) : "E?";
}

static void die(const char *step)
{
	printf("err %s %s\n", step, errname(errno));
	exit(1);
}

static void *idle(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

int main(int argc, char **argv)
{
	int a = 1;
	if (argc > 1 && strcmp(argv[1], "threads") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle, NULL) != 0)
			die("pthread_create");
		a++;
	}
	if (argc != a + 2) {
		fprintf(stderr, "usage: unixsock [threads] stream|dgram PATH|@ABSTRACT\n");
		return 2;
	}
	int type = strcmp(argv[a], "dgram") == 0 ? SOCK_DGRAM : SOCK_STREAM;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *name = argv[a + 1];
	socklen_t len;
	if (name[0] == '@') {
		strncpy(sa.sun_path + 1, name + 1, sizeof sa.sun_path - 2);
		len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name + 1);
	} else {
		strncpy(sa.sun_path, name, sizeof sa.sun_path - 1);
		len = sizeof sa;
	}
	int s = socket(AF_UNIX, type, 0);
	if (s < 0)
		die("socket");
	if (bind(s, (struct sockaddr *)&sa, len) != 0)
		die("bind");
	if (type == SOCK_STREAM && listen(s, 1) != 0)
		die("listen");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int c = socket(AF_UNIX, type, 0);
		if (c < 0)
			die("child socket");
		if (connect(c, (struct sockaddr *)&sa, len) != 0)
			die("connect");
		if (send(c, "hi", 2, 0) != 2)
			die("send");
		_exit(0);
	}
	int r = s;
	if (type == SOCK_STREAM && (r = accept(s, NULL, NULL)) < 0)
		die("accept");
	char buf[8] = {0};
	if (recv(r, buf, sizeof buf - 1, 0) < 0)
		die("recv");
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 1; // the child printed why
	printf("ok %s\n", buf);
	return 0;
}
