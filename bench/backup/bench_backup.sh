#!/bin/bash
# Backup and restore throughput of the erp_backup jobs beside a bare pg_dump -Fc / pg_restore
# of the same database in the same run (bench, not a test: results go to results.md).
#   bench/backup/bench_backup.sh [SIZE_MB]      default 1024 (about 0.5 GB of database)
# The bare dump and the backup job run ROUNDS times each (default 2), interleaved, so that a
# change in the machine's load hits both; the overhead is computed from the fastest of each.
# BENCH_OTHER_FILES=DIR also times the job from another copy of roles/erp_backup/files (an
# older version, say) in the same rounds, on the same database.
# Uses its own containers (bk-bench-*) on this machine's engine and removes them at the end.
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/../.." && pwd)
files=$repo/roles/erp_backup/files
other=${BENCH_OTHER_FILES:-}
rounds=${ROUNDS:-2}
size_mb=${1:-1024}
db=bk-bench-db
work=$(mktemp -d /tmp/bk-bench-XXXXXX)
cleanup() {
  docker rm -f -v "$db" >/dev/null 2>&1 || true
  docker ps -aq --filter label=erp.backup.verify="$db" | xargs -r docker rm -f -v >/dev/null
  rm -rf -- "$work"
}
trap cleanup EXIT

psql_db() { docker exec -i "$db" psql -X -q -A -t -v ON_ERROR_STOP=1 -U postgres -d "$1"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

docker rm -f -v "$db" >/dev/null 2>&1 || true
# Like erp_db (erp_db_shm_size): the 64 MB default is too small for index builds at 1 GB.
docker run -d --name "$db" --shm-size=256m -e POSTGRES_PASSWORD=bench -e POSTGRES_DB=erp postgres:15 >/dev/null
until docker exec "$db" pg_isready -q -h 127.0.0.1; do sleep 1; done

# About 1 KB a row across three tables with indexes, like invoices with lines.
rows=$((size_mb * 1000))
started=$(now)
psql_db erp <<SQL
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers, issued_on date, note text);
CREATE TABLE invoice_lines (invoice_id bigint REFERENCES invoices, position int, description text, amount numeric(12,2),
  PRIMARY KEY (invoice_id, position));
INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.test' FROM generate_series(1, $((rows / 20))) g;
INSERT INTO invoices SELECT g, 1 + g % $((rows / 20)), date '2020-01-01' + g % 2000, repeat(md5(g::text), 8)
  FROM generate_series(1, $((rows / 2))) g;
INSERT INTO invoice_lines SELECT 1 + g % $((rows / 2)), g, repeat(md5((g * 7)::text), 6), (g % 100000) / 100.0
  FROM generate_series(1, $rows) g;
CREATE INDEX ON invoices (customer_id);
VACUUM ANALYZE;
SQL
db_bytes=$(psql_db erp <<<"SELECT pg_database_size('erp')")
echo "generated $((db_bytes / 1048576)) MB in $(since "$started") s" >&2

# The job's environment file; the lib dir and tool follow the copy of the scripts timed.
job_env() {
  cat <<ENV
ERP_BACKUP_DOCKER=$(command -v docker)
ERP_BACKUP_CONTAINER=$db
ERP_BACKUP_DATABASE=erp
ERP_BACKUP_DB_USER=postgres
ERP_BACKUP_DIR=$work/backups
ERP_BACKUP_METRICS_DIR=$work/metrics
ERP_BACKUP_LIB_DIR=$1
ERP_BACKUP_PYTHON=/usr/bin/python3
ERP_BACKUP_TOOL=$1/erp_backup_tool.py
ERP_BACKUP_LOCK_FILE=$work/lock
ERP_BACKUP_LOCK_WAIT=60
ERP_BACKUP_MIN_BYTES=1024
ERP_BACKUP_KEEP_DAILY=7
ERP_BACKUP_KEEP_WEEKLY=4
ERP_BACKUP_KEEP_MONTHLY=6
ERP_BACKUP_WAL_CONTAINER=$db-wal
ERP_BACKUP_WAL_SLOT=erp_backup_wal
ERP_BACKUP_KEEP_BASE=2
ERP_BACKUP_VERIFY_CONTAINER_PREFIX=bk-bench-verify
ENV
}
job_env "$files" >"$work/backup.env"
[ -z "$other" ] || job_env "$other" >"$work/other.env"

# Each timed backup job is labelled, so retention never removes one and each starts alike.
run_job() {
  local env=$1 label=$2 started
  started=$(now)
  ERP_BACKUP_ENV_FILE=$env "$(sed -n 's/^ERP_BACKUP_LIB_DIR=//p' "$env")/erp-backup" --label "$label" >/dev/null
  since "$started"
}
fastest() { printf '%s\n' "$@" | sort -g | head -n 1; }

bare_dumps=() jobs=() others=()
for round in $(seq 1 "$rounds"); do
  started=$(now)
  docker exec "$db" pg_dump -U postgres -Fc -d erp >"$work/bare.dump"
  bare_dumps+=("$(since "$started")")
  jobs+=("$(run_job "$work/backup.env" "bench-$round")")
  [ -z "$other" ] || others+=("$(run_job "$work/other.env" "other-$round")")
done
echo "bare pg_dump: ${bare_dumps[*]} s; erp-backup: ${jobs[*]} s${other:+; other erp-backup: ${others[*]} s}" >&2
bare_dump=$(fastest "${bare_dumps[@]}")
job_backup=$(fastest "${jobs[@]}")
dump_mb=$(($(stat -c %s "$work/bare.dump") / 1048576))

started=$(now)
docker exec "$db" createdb -U postgres -T template0 bare_restore
docker exec -i "$db" pg_restore -U postgres --exit-on-error -d bare_restore <"$work/bare.dump"
bare_restore=$(since "$started")
docker exec "$db" dropdb -U postgres bare_restore
rm -f "$work/bare.dump"

started=$(now)
ERP_BACKUP_ENV_FILE=$work/backup.env "$files/erp-backup-verify" "$work/backups/dumps/$(ls "$work/backups/dumps" | grep -- '-bench-1$')" 2>/dev/null
job_verify=$(since "$started")
job_restore=$(awk '$1 == "erp_backup_verify_restore_duration_seconds" { printf "%.1f", $2 }' "$work/metrics/erp_backup_verify.prom")

overhead=$(awk -v j="$job_backup" -v b="$bare_dump" 'BEGIN { printf "%.0f", (j / b - 1) * 100 }')
if [ -n "$other" ]; then
  other_backup=$(fastest "${others[@]}")
  echo "other erp-backup: $other_backup s, overhead $(awk -v j="$other_backup" -v b="$bare_dump" 'BEGIN { printf "%.0f", (j / b - 1) * 100 }') %" >&2
fi
echo "| $(date -u '+%Y-%m-%d %H:%M') | $((db_bytes / 1048576)) MB | $dump_mb MB | $bare_dump s | $job_backup s | $overhead % | $bare_restore s | $job_restore s | $job_verify s | $(cut -d' ' -f1-3 /proc/loadavg) |"
