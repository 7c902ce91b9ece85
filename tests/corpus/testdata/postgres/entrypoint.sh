#!/bin/bash
# Entrypoint of the corpus's PostgreSQL image. It follows the conventions of
# docker-library's postgres image (PGDATA, POSTGRES_PASSWORD, POSTGRES_USER,
# POSTGRES_DB, /docker-entrypoint-initdb.d) and was written for Oak's corpus.
#
# As root: make PGDATA and the socket directory and hand them to postgres.
# As postgres: on an empty PGDATA run initdb, start a server that listens on
# its unix socket only, run the init scripts against it and stop it; then
# exec the real server, which becomes the container's main process.
set -euo pipefail

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	chmod 3777 /var/run/postgresql
	exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
		echo "entrypoint: the database is not initialised: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
		exit 1
	fi
	user="${POSTGRES_USER:-postgres}"
	initdb --username="$user" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
		--auth-local=trust --auth-host="$auth" -D "$PGDATA"
	printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
	printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	db="${POSTGRES_DB:-$user}"
	if [ "$db" != postgres ]; then
		psql -v ON_ERROR_STOP=1 --username "$user" --no-password --dbname postgres \
			--set db="$db" <<<'CREATE DATABASE :"db";'
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh) echo "entrypoint: running $f"; . "$f" ;;
		*.sql) echo "entrypoint: running $f"; psql -v ON_ERROR_STOP=1 --username "$user" --no-password --dbname "$db" -f "$f" ;;
		*) [ -e "$f" ] && echo "entrypoint: ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "entrypoint: initialised $PGDATA; starting the server"
fi

exec "$@"
