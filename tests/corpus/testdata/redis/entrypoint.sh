#!/bin/sh
# Entrypoint of the corpus's Redis image, after the conventions of
# docker-library's redis image, written for Oak's corpus: as root, give
# /data to redis and drop to it; then exec the server.
set -e

case "$1" in
-* | *.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	find /data \! -user redis -exec chown redis:redis '{}' +
	exec gosu redis "$0" "$@"
fi

umask 0077
exec "$@"
