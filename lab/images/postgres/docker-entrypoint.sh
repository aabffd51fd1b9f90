#!/usr/bin/env bash
# Entrypoint with the official postgres image's contract:
#   POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), POSTGRES_USER (postgres),
#   POSTGRES_DB (= user), POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR,
#   POSTGRES_HOST_AUTH_METHOD (scram-sha-256), PGDATA; the first four also
#   read from a <NAME>_FILE file (Docker secrets).
# First start on an empty PGDATA: initdb, create the database, run
# /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz on a socket-only temporary
# server. Every start: exec the server as PID 1 (user postgres, uid 999) so
# signals reach it (SIGTERM smart, SIGINT fast, SIGQUIT immediate shutdown).
# `docker run IMAGE -c key=value` passes server options, as with the official image.
set -Eeuo pipefail

log() { printf '%s\n' "$*"; }

# Sets NAME from NAME or NAME_FILE (not both), default $2.
file_env() {
  local var="$1" default="${2:-}"
  local file_var="${var}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    log "error: both $var and $file_var are set (but are exclusive)" >&2
    exit 1
  fi
  local value="$default"
  if [ -n "${!var:-}" ]; then
    value="${!var}"
  elif [ -n "${!file_var:-}" ]; then
    value="$(<"${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  DATABASE_ALREADY_EXISTS=
  if [ -s "$PGDATA/PG_VERSION" ]; then
    DATABASE_ALREADY_EXISTS=true
  fi
}

# Runs as root only: make the data and socket dirs the postgres user's.
create_dirs() {
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 00700 "$PGDATA" || :
  chmod 03775 /var/run/postgresql || :
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres: '{}' +
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres: '{}' +
}

require_password() {
  if [ -n "$POSTGRES_PASSWORD" ] || [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    return
  fi
  cat >&2 <<'EOM'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.

       See PostgreSQL documentation about "trust":
       https://www.postgresql.org/docs/current/auth-trust.html
EOM
  exit 1
}

init_database_dir() {
  local -a args=(--username="$POSTGRES_USER")
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    args+=(--waldir="$POSTGRES_INITDB_WALDIR")
  fi
  # The password goes through a pipe, never argv; POSTGRES_INITDB_ARGS is a
  # shell word list on purpose (like the official image).
  # shellcheck disable=SC2086
  initdb "${args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
}

# initdb's pg_hba.conf trusts local socket and loopback connections (used by
# the init scripts); anything else must authenticate.
setup_hba() {
  local method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  if [ "$method" = trust ]; then
    cat >&2 <<'EOM'
WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust". This will allow
         anyone with access to the Postgres port to access your database without
         a password, even if POSTGRES_PASSWORD is set.
EOM
  fi
  printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
}

# Takes the server's arguments, so options such as shared_preload_libraries
# also apply while the init scripts run. Socket only: nothing from outside can
# connect before init is complete.
temp_server_start() {
  if [ "${1:-}" = postgres ]; then
    shift
  fi
  set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -w start -o "$(printf '%q ' "$@")"
}

temp_server_stop() {
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_init() {
  PGHOST=/var/run/postgresql PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD" \
    psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password "$@"
}

create_database() {
  if [ "$POSTGRES_DB" = postgres ]; then
    return
  fi
  local exists
  exists="$(psql_init --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
  if [ -z "${exists//[[:space:]]/}" ]; then
    psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
}

run_init_scripts() {
  local f
  shopt -s nullglob
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        # Executable scripts run on their own; the others are sourced and see
        # this script's functions and variables, as in the official image.
        if [ -x "$f" ]; then
          log "$0: running $f"
          "$f"
        else
          log "$0: sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) log "$0: running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "$0: running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *) log "$0: ignoring $f" ;;
    esac
  done
}

main() {
  # `docker run IMAGE -c key=value` means `postgres -c key=value`.
  if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
  fi
  if [ "$1" != postgres ]; then
    exec "$@"
  fi

  setup_env
  if [ "$(id -u)" = 0 ]; then
    create_dirs
    # Drop to postgres and start over, so files initdb writes belong to it.
    export HOME=/var/lib/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi

  if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
    require_password
    init_database_dir
    setup_hba
    temp_server_start "$@"
    create_database
    run_init_scripts
    temp_server_stop
    log
    log 'PostgreSQL init process complete; ready for start up.'
    log
  else
    log
    log 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    log
  fi
  exec "$@"
}

main "${@:-postgres}"
