/* A musl-linked C program: counts its runs in /data/count (argv[1] to
 * override), from two threads taking turns under a mutex, and prints the
 * count. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long count;

static void *bump(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	count++;
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/data/count";
	char buf[32] = "";
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (read(fd, buf, sizeof buf - 1) < 0) {
		fprintf(stderr, "read %s: %s\n", path, strerror(errno));
		return 1;
	}
	count = atol(buf);
	pthread_t t;
	if (pthread_create(&t, NULL, bump, NULL) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}
	pthread_join(t, NULL);
	int n = snprintf(buf, sizeof buf, "%ld\n", count);
	if (pwrite(fd, buf, n, 0) != n || fsync(fd) != 0) {
		fprintf(stderr, "write %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(fd);
	printf("count=%ld\n", count);
	return 0;
}
