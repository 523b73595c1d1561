#!/usr/bin/env bash
#
# pgcluster.sh: a private PostgreSQL 15 cluster for testing textclf.
#
#   tools/pgcluster.sh start     initdb if needed, start, print the env to use
#   tools/pgcluster.sh stop      stop (fast shutdown), keep the data
#   tools/pgcluster.sh status    running or not, and the env
#   tools/pgcluster.sh env       print the env (export lines) only
#   tools/pgcluster.sh destroy   stop and delete the cluster folder
#   tools/pgcluster.sh dir       print the cluster folder
#
#   eval "$(tools/pgcluster.sh start)"; psql -c 'select 1'
#
# Where: one folder per checkout, outside the checkout, owned by the server's
# OS user with mode 0700:
#
#   ${TEXTCLF_PGROOT:-/tmp/textclf-pg-<uid>-<hash of the checkout path>}/
#       data/        the cluster (initdb --auth=trust, UTF8, C.UTF-8)
#       sock/        the Unix socket; there is no TCP listener
#       server.log   the server log
#       port         the port number, which only names the socket file
#
# The folder is outside the checkout so that the cluster works when the
# checkout lives where the server's user cannot write (/root, a read-only
# mount).  As root the server runs as the "postgres" OS user (root cannot run
# postgres); as any other user it runs as that user.  Clients connect as the
# database superuser "postgres" with trust authentication over the private
# socket, so only local users who can reach the socket folder get in.
#
# The configuration trades durability for speed (fsync=off and friends): this
# cluster is for tests only.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

if [ "$(id -u)" -eq 0 ]; then
	PGOSUSER=postgres
else
	PGOSUSER=$(id -un)
fi

KEY=$(printf '%s' "$REPO" | cksum | cut -d' ' -f1)
PGROOT=${TEXTCLF_PGROOT:-/tmp/textclf-pg-$(id -u)-$KEY}
DATA=$PGROOT/data
SOCK=$PGROOT/sock
LOG=$PGROOT/server.log

die() { echo "pgcluster.sh: $*" >&2; exit 1; }

# run a command as the server's OS user
as_pg()
{
	if [ "$(id -un)" = "$PGOSUSER" ]; then
		"$@"
	else
		(cd / && runuser -u "$PGOSUSER" -- "$@")
	fi
}

# create the cluster folder, owned by the server's user, or check it
make_root()
{
	if [ ! -d "$PGROOT" ]; then
		mkdir -p "$(dirname "$PGROOT")"
		mkdir -m 0700 "$PGROOT"
		[ "$(id -un)" = "$PGOSUSER" ] || chown "$PGOSUSER:" "$PGROOT"
	fi
	if [ -L "$PGROOT" ] || [ "$(stat -c %U "$PGROOT")" != "$PGOSUSER" ]; then
		die "$PGROOT exists but is not a directory owned by $PGOSUSER"
	fi
	chmod 0700 "$PGROOT"
	as_pg mkdir -p -m 0700 "$SOCK"
}

# true if something listens on TCP port $1 of localhost
port_busy()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick the port: the stored one, else a free one derived from the key
pick_port()
{
	local p
	if [ -s "$PGROOT/port" ]; then
		cat "$PGROOT/port"
		return
	fi
	p=$((54000 + KEY % 1000))
	while port_busy "$p" || [ -e "$SOCK/.s.PGSQL.$p.lock" ]; do
		p=$((p + 1))
		[ "$p" -lt 65000 ] || p=54000
	done
	printf '%s\n' "$p" | as_pg tee "$PGROOT/port" >/dev/null
	echo "$p"
}

running()
{
	[ -f "$DATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

print_env()
{
	local port
	port=$(cat "$PGROOT/port" 2>/dev/null || echo 5432)
	echo "export PGHOST=$SOCK"
	echo "export PGPORT=$port"
	echo "export PGUSER=postgres"
	echo "export PGDATABASE=postgres"
}

do_start()
{
	local port
	[ -x "$PGBIN/pg_ctl" ] || die "$PGBIN/pg_ctl not found (install postgresql-15)"
	make_root
	port=$(pick_port)
	if running; then
		print_env
		return
	fi
	if [ ! -f "$DATA/PG_VERSION" ]; then
		as_pg rm -rf "$DATA"
		as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust \
			--encoding=UTF8 --locale=C.UTF-8 >"$PGROOT/initdb.log" 2>&1 ||
			{ cat "$PGROOT/initdb.log" >&2; die "initdb failed"; }
		echo "include_if_exists = 'textclf_test.conf'" |
			as_pg tee -a "$DATA/postgresql.conf" >/dev/null
	fi
	# rewritten at every start, so an old cluster picks up changes here
	as_pg tee "$DATA/textclf_test.conf" >/dev/null <<-EOF
		# written by tools/pgcluster.sh: a throw-away test cluster
		listen_addresses = ''
		unix_socket_directories = '$SOCK'
		unix_socket_permissions = 0777
		port = $port
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 50
		shared_buffers = 128MB
		max_worker_processes = 8
		max_parallel_workers = 4
		max_parallel_workers_per_gather = 2
		log_line_prefix = '%m [%p] %q%a '
		lc_messages = 'C'
		datestyle = 'iso, mdy'
		timezone = 'UTC'
	EOF
	if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -s start; then
		tail -n 30 "$LOG" >&2 || true
		die "could not start the server (log: $LOG)"
	fi
	print_env
}

do_stop()
{
	if running; then
		as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 -s stop ||
			as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -s stop
	fi
}

case "${1:-}" in
	start)
		do_start
		;;
	stop)
		do_stop
		;;
	status)
		if running; then
			echo "# running: $DATA (log: $LOG)"
			print_env
		else
			echo "# not running: $DATA"
			exit 3
		fi
		;;
	env)
		print_env
		;;
	destroy)
		do_stop
		rm -rf "$PGROOT"
		;;
	dir)
		echo "$PGROOT"
		;;
	*)
		echo "usage: $0 start|stop|status|env|destroy|dir" >&2
		exit 2
		;;
esac
