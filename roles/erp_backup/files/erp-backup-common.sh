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
    ERP_BACKUP_KEEP_WEEKLY ERP_BACKUP_KEEP_MONTHLY ERP_BACKUP_WAL_CONTAINER ERP_BACKUP_WAL_SLOT \
    ERP_BACKUP_KEEP_BASE; do
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

# Textfile collector metrics of this job (ERP_METRICS_PREFIX), written atomically.
erp_metrics() {
  local result=$1 duration=$2 gauge
  shift 2
  local args=()
  for gauge in "$@"; do
    args+=(--gauge "$gauge")
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

# Reads a custom-format dump on stdin with the container's pg_restore and prints
# "<schema.table> <rows>" for every table, from the dump's own data (so the counts describe
# exactly the snapshot that was dumped), plus "#schema <id>", the highest id in
# schema_migrations. Reading every data block is also the dump's integrity check: a truncated
# or corrupted dump makes pg_restore fail here.
# shellcheck disable=SC2016 # the program runs in the container's bash, not here
readonly ERP_COUNT_ROWS_PROGRAM='set -euo pipefail
pg_restore --data-only --file=- | awk '"'"'
  /^COPY / && !copying { table = $2; rows = 0; copying = 1; next }
  copying && $0 == "\\." { print table, rows; copying = 0; next }
  copying {
    rows++
    if (table ~ /(^|\.)schema_migrations$/) { split($0, field, "\t"); if (field[1] > top) top = field[1] }
  }
  END { if (copying) exit 3; if (top != "") print "#schema", top }
'"'"''

erp_count_rows() {
  "$ERP_BACKUP_DOCKER" exec -i "$1" bash -c "$ERP_COUNT_ROWS_PROGRAM"
}

# The image of a container (the throwaway servers use the database container's own image).
erp_image_of() {
  "$ERP_BACKUP_DOCKER" inspect -f '{{.Config.Image}}' "$1"
}
