#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests, from Debian's postgresql package.
# Usage: source scripts/pg_temp.sh   -> exports RECS_TEST_POSTGRES_URL, stops the server on exit.
set -euo pipefail
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "${PG_BIN}" ] || [ ! -x "${PG_BIN}/initdb" ]; then
  echo "pg_temp: PostgreSQL server binaries not found (apt-get install postgresql); PostgreSQL tests will be skipped" >&2
  return 0 2>/dev/null || exit 0
fi
PG_PORT=${PG_PORT:-54329}
PG_DIR=$(mktemp -d /tmp/recs-pg.XXXXXX)
if [ "$(id -u)" = "0" ]; then
  chown postgres:postgres "$PG_DIR"
  run_pg() { su postgres -s /bin/bash -c "$*"; }
else
  run_pg() { bash -c "$*"; }
fi
run_pg "'$PG_BIN/initdb' -D '$PG_DIR/data' -U postgres -A trust --no-sync -E UTF8 >/dev/null"
run_pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -l '$PG_DIR/log' -w -o \"-p $PG_PORT -k '$PG_DIR' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200\" start >/dev/null"
run_pg "'$PG_BIN/createdb' -h 127.0.0.1 -p $PG_PORT -U postgres recs_test"
export RECS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/recs_test"
pg_temp_stop() { run_pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m fast stop >/dev/null" || true; rm -rf "$PG_DIR"; }
trap pg_temp_stop EXIT
echo "pg_temp: PostgreSQL running at $RECS_TEST_POSTGRES_URL" >&2
