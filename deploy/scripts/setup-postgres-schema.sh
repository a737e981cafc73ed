#!/bin/sh
# One-shot schema setup for the Temporal server's PostgreSQL databases.
# Runs inside temporalio/admin-tools (see docker-compose.yml). Safe to re-run:
#   - `create` ignores a database that already exists,
#   - `setup-schema -v 0.0` leaves an already-versioned schema alone,
#   - `update-schema` only applies the versioned migrations the database is missing.
set -eu

: "${SQL_PLUGIN:=postgres12}"
: "${POSTGRES_SEEDS:=postgresql}"
: "${DB_PORT:=5432}"
: "${POSTGRES_USER:=temporal}"
: "${SQL_PASSWORD:?SQL_PASSWORD must hold the PostgreSQL password}"
: "${DBNAME:=temporal}"
: "${VISIBILITY_DBNAME:=temporal_visibility}"
: "${SCHEMA_ROOT:=/etc/temporal/schema/postgresql/v12}"
export SQL_PASSWORD

log() { echo "[schema-setup] $*"; }

attempt=0
until nc -z -w 2 "$POSTGRES_SEEDS" "$DB_PORT" 2>/dev/null; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    log "PostgreSQL at $POSTGRES_SEEDS:$DB_PORT is still unreachable, giving up"
    exit 1
  fi
  log "waiting for PostgreSQL at $POSTGRES_SEEDS:$DB_PORT ($attempt)"
  sleep 2
done

sql_tool() {
  temporal-sql-tool --plugin "$SQL_PLUGIN" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

setup_database() {
  db="$1"
  schema_dir="$2"
  if [ ! -d "$schema_dir" ]; then
    log "schema directory $schema_dir not found in this admin-tools image"
    exit 1
  fi
  log "database $db: create (if missing)"
  sql_tool --db "$db" create
  log "database $db: set up versioning"
  sql_tool --db "$db" setup-schema -v 0.0
  log "database $db: apply migrations from $schema_dir"
  sql_tool --db "$db" update-schema -d "$schema_dir"
}

setup_database "$DBNAME" "$SCHEMA_ROOT/temporal/versioned"
setup_database "$VISIBILITY_DBNAME" "$SCHEMA_ROOT/visibility/versioned"
log "done"
