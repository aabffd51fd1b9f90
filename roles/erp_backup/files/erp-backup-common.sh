# shellcheck shell=bash
# Shared by erp-backup, erp-backup-verify, erp-backup-base and erp-backup-restore: sourced
# after the environment file, never run. Installed by the erp_backup role.

# One line per event on stderr and in syslog/journald, tagged with the job and a job id.
erp_log() {
  local level=$1
  shift
  printf '%s %s %s[%s]: %s\n' "$(/usr/bin/date -u +%Y-%m-%dT%H:%M:%SZ)" "${level^^}" "$ERP_JOB" "$ERP_JOB_ID" "$*" >&2
  /usr/bin/logger -t "$ERP_JOB" -p "user.$level" -- "job_id=$ERP_JOB_ID $*" 2>/dev/null || true
}

erp_die() {
  erp_log err "$*"
  exit 1
}

# Every setting the jobs read from the environment file must be there: a cron job with a
# half-written environment must fail loudly, not back up the wrong database.
erp_require_config() {
  local name missing=0
  for name in ERP_BACKUP_DOCKER ERP_BACKUP_CONTAINER ERP_BACKUP_DATABASE ERP_BACKUP_DB_USER \
    ERP_BACKUP_DIR ERP_BACKUP_METRICS_DIR ERP_BACKUP_LIB_DIR ERP_BACKUP_PYTHON ERP_BACKUP_TOOL \
    ERP_BACKUP_LOCK_FILE ERP_BACKUP_LOCK_WAIT ERP_BACKUP_MIN_BYTES ERP_BACKUP_KEEP_DAILY \
    ERP_BACKUP_KEEP_WEEKLY ERP_BACKUP_KEEP_MONTHLY ERP_BACKUP_KEEP_LABELLED ERP_BACKUP_WAL_CONTAINER \
    ERP_BACKUP_WAL_SLOT ERP_BACKUP_KEEP_BASE; do
    if [ -z "${!name:-}" ]; then
      printf '%s: %s is not set in the environment file\n' "$ERP_JOB" "$name" >&2
      missing=1
    fi
  done
  return "$missing"
}

# All jobs of one host share one lock. The cron entries start the jobs under
# `flock LOCKFILE`: then the inherited descriptor already holds the lock and re-locking it
# succeeds at once. Started any other way (by hand, by a playbook), the job takes the lock
# itself and waits up to ERP_BACKUP_LOCK_WAIT seconds for a running job to finish.
erp_lock() {
  local fd target
  for fd in "/proc/$$/fd"/*; do
    target=$(/usr/bin/readlink "$fd" 2>/dev/null) || continue
    if [ "$target" = "$ERP_BACKUP_LOCK_FILE" ] && /usr/bin/flock -n "${fd##*/}"; then
      return 0
    fi
  done
  exec 9>>"$ERP_BACKUP_LOCK_FILE"
  /usr/bin/flock -w "$ERP_BACKUP_LOCK_WAIT" 9
}

# Textfile collector metrics of this job (ERP_METRICS_PREFIX), written atomically:
#   erp_metrics success|failure SECONDS [NAME=VALUE...] [--current NAME=VALUE...]
# Gauges before --current describe the last successful run (kept when this attempt fails);
# those after it describe this attempt (written as given).
erp_metrics() {
  local result=$1 duration=$2 gauge kind=--gauge
  shift 2
  local args=()
  for gauge in "$@"; do
    if [ "$gauge" = --current ]; then
      kind=--current
      continue
    fi
    args+=("$kind" "$gauge")
  done
  "$ERP_BACKUP_PYTHON" "$ERP_BACKUP_TOOL" metrics --file "$ERP_BACKUP_METRICS_DIR/$ERP_METRICS_PREFIX.prom" \
    --prefix "$ERP_METRICS_PREFIX" --job "$ERP_JOB" --result "$result" --duration "$duration" "${args[@]}"
}

erp_container_running() {
  local state
  state=$("$ERP_BACKUP_DOCKER" inspect -f '{{.State.Running}}' "$1" 2>/dev/null) || return 1
  [ "$state" = "true" ]
}

# psql in the database container, as the dump user, one value per line, stops at the first error.
erp_psql() {
  local database=$1
  shift
  "$ERP_BACKUP_DOCKER" exec -i "$ERP_BACKUP_CONTAINER" psql -X -q -A -t -v ON_ERROR_STOP=1 \
    -U "$ERP_BACKUP_DB_USER" -d "$database" "$@"
}

# Sent to the psql session that holds the dump's snapshot (erp-backup): "<schema.table> <rows>"
# for every table whose data pg_dump dumps (ordinary tables outside the system schemas and
# outside extensions), named as pg_dump names them; "#schema <id>", the highest id in
# schema_migrations; "#version <server version>". query_to_xml runs each count inside the
# session's transaction, so all of them see the exported snapshot.
readonly ERP_COUNT_ROWS_SQL="SELECT format('%I.%I', n.nspname, c.relname) || ' ' || (xpath('/row/n/text()',
    query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1;
SELECT '#schema ' || (xpath('/row/v/text()',
    query_to_xml('SELECT max(id) AS v FROM ' || to_regclass('schema_migrations'), false, true, '')))[1]::text
  WHERE to_regclass('schema_migrations') IS NOT NULL;
SELECT '#version ' || current_setting('server_version');"

# The image of a container (the throwaway servers use the database container's own image).
erp_image_of() {
  "$ERP_BACKUP_DOCKER" inspect -f '{{.Config.Image}}' "$1"
}
