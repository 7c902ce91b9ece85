#!/bin/bash
# Entrypoint of the corpus's MariaDB image. It follows the conventions of
# docker-library's mariadb image (MARIADB_ROOT_PASSWORD, MARIADB_DATABASE,
# /var/lib/mysql) and was written for Oak's corpus.
#
# As root: make the data and socket directories and hand them to mysql. As
# mysql: on an empty data directory run mariadb-install-db, start a server
# without networking (unix socket only), set root's password, make the
# database, stop it; then exec the real server.
set -euo pipefail

if [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi

if [ "$1" = mariadbd ] && [ "$(id -u)" = 0 ]; then
	mkdir -p /var/lib/mysql /run/mysqld
	chown mysql:mysql /var/lib/mysql /run/mysqld
	exec gosu mysql "${BASH_SOURCE[0]}" "$@"
fi

sock=/run/mysqld/mysqld.sock
if [ "$1" = mariadbd ] && [ ! -d /var/lib/mysql/mysql ]; then
	if [ -z "${MARIADB_ROOT_PASSWORD:-}" ]; then
		echo "entrypoint: the database is not initialised: set MARIADB_ROOT_PASSWORD" >&2
		exit 1
	fi
	mariadb-install-db --datadir=/var/lib/mysql --skip-test-db \
		--auth-root-authentication-method=normal --skip-name-resolve
	"$@" --skip-networking --socket="$sock" &
	pid=$!
	for i in $(seq 60); do
		mariadb-admin --socket="$sock" -uroot ping --silent 2>/dev/null && break
		kill -0 "$pid" || { echo "entrypoint: the temporary server died" >&2; exit 1; }
		sleep 1
	done
	pw="${MARIADB_ROOT_PASSWORD//\'/\'\'}"
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		# mariadb-install-db also makes password-less root accounts for
		# 127.0.0.1, ::1 and the host name; root@'%' replaces them.
		echo "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';"
		echo "FLUSH PRIVILEGES;"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$pw';"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY '$pw';"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		if [ -n "${MARIADB_DATABASE:-}" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
		fi
	} | mariadb --socket="$sock" -uroot
	kill "$pid"
	wait "$pid"
	echo "entrypoint: initialised /var/lib/mysql; starting the server"
fi

exec "$@"
