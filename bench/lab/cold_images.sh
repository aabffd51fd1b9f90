#!/usr/bin/env bash
# How long the lab's images take to build on a machine without any build cache: what a
# first `make lab` pays. Builds every image with --no-cache under throwaway tags
# (bench-lab/*) that are removed afterwards, so the lab's own images stay as they are.
# The debootstrap base image is timed separately (lab/images/base/build.sh, ~40 s here).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
images="$repo/lab/images"

time_build() {
  local tag=$1; shift
  local started=$SECONDS
  docker build -q -t "bench-lab/$tag" "$@" 2>/dev/null >/dev/null
  printf '| %-28s | %4d s |\n' "$tag" $((SECONDS - started))
}

echo "| image | cold build |"
echo "|---|---|"
total=$SECONDS
time_build host --no-cache "$images/host"
time_build registry --no-cache "$images/registry"
time_build postgres --no-cache "$images/postgres"
time_build erp-app-1.0.0 --no-cache --build-arg ERP_VERSION=1.0.0 "$images/erp-app"
# The other 7 tags share every layer but the last with it (cache on): what each costs.
time_build erp-app-1.1.0 --build-arg ERP_VERSION=1.1.0 "$images/erp-app"
printf '| %-28s | %4d s |\n' "all of the above" $((SECONDS - total))
docker images --format '{{.Repository}}:{{.Tag}}' | grep '^bench-lab/' | xargs -r docker rmi -f >/dev/null
