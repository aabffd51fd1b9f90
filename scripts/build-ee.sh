#!/usr/bin/env bash
# Builds the execution environment AWX runs (execution-environment.yml) and pushes it to the
# lab registry as 127.0.0.1:5000/erp-ee:<collection version> (`make ee`; docs/awx.md).
#
#   EE_REGISTRY=registry.example:5000 scripts/build-ee.sh   push to another registry instead
#                                                          (after `docker login` there)
#
# ansible-builder writes the build context; this script first stages what it cannot know:
# the collection tarball (exactly what `ansible-galaxy collection build` packs) and the CA
# bundle pip trusts on this machine, because pip inside the build goes out through the same
# network as pip here (a site's TLS proxy included). The base image is the lab's Debian 12
# image, built locally, since no public container registry is reachable.
set -euo pipefail

readonly repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly venv_bin="$repo/.venv/bin"
readonly stage="$repo/execution-environment/stage"
readonly registry="${EE_REGISTRY:-127.0.0.1:${LAB_REGISTRY_PORT:-5000}}"

die() {
  echo "ee: $*" >&2
  exit 1
}

[[ -x "$venv_bin/ansible-builder" ]] || die "no ansible-builder in .venv: run 'make setup' first"
docker info >/dev/null 2>&1 || die "no Docker engine answers: run 'make setup' (it starts one)"

# Fail before a build of several minutes, not after it.
if [[ -z "${EE_REGISTRY:-}" ]]; then
  if ! "$venv_bin/python" - "http://$registry/v2/" <<'EOF'; then
import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
EOF
    die "the lab registry does not answer on http://$registry/v2/: bring the lab up first ('make lab-up'), or set EE_REGISTRY"
  fi
fi

version="$(sed -n 's/^version: *//p' "$repo/galaxy.yml")"
[[ -n "$version" ]] || die "no version in galaxy.yml"
readonly version
readonly local_tag="erp-ee:$version"
readonly remote_tag="$registry/erp-ee:$version"

# The lab's base image (debian:bookworm-slim): reused when present, else debootstrapped.
"$repo/lab/images/base/build.sh"

rm -rf "$stage"
mkdir -p "$stage"
(
  cd "$repo"
  ANSIBLE_CONFIG="$repo/ansible.cfg" "$venv_bin/ansible-galaxy" collection build --force \
    --output-path "$stage" "$repo" >/dev/null
)
mv "$stage/erp-ops-$version.tar.gz" "$stage/erp-ops.tar.gz"

pip_setting() {
  # The value pip uses here for one setting: its environment variable, else its config files.
  local env_name="$1" key="$2"
  if [[ -n "${!env_name:-}" ]]; then
    printf '%s\n' "${!env_name}"
  else
    "$venv_bin/pip" config get "$key" 2>/dev/null || true
  fi
}

ca_bundle="$(pip_setting PIP_CERT global.cert)"
if [[ -z "$ca_bundle" || ! -f "$ca_bundle" ]]; then
  ca_bundle=/etc/ssl/certs/ca-certificates.crt
fi
if [[ ! -f "$ca_bundle" ]]; then
  ca_bundle="$("$venv_bin/python" -c 'import certifi; print(certifi.where())')"
fi
cp "$ca_bundle" "$stage/pip-ca-bundle.crt"

build_args=()
index_url="$(pip_setting PIP_INDEX_URL global.index-url)"
# A file:// index lies on this machine's disk, out of the build's reach.
if [[ "$index_url" == http://* || "$index_url" == https://* ]]; then
  build_args+=(--build-arg "PIP_INDEX_URL=$index_url")
fi

context="$(mktemp -d /var/tmp/erp-ee-context.XXXXXX)"
trap 'rm -rf "$context"' EXIT

echo "ee: building $local_tag (ansible-builder, base debian:bookworm-slim)"
started=$SECONDS
(
  cd "$repo"
  "$venv_bin/ansible-builder" build --file execution-environment.yml --context "$context" \
    --container-runtime docker --tag "$local_tag" --tag "$remote_tag" \
    "${build_args[@]}" --verbosity 3
)
echo "ee: built $local_tag in $((SECONDS - started)) s"

for attempt in 1 2 3; do
  if docker push "$remote_tag"; then
    echo "ee: pushed $remote_tag"
    exit 0
  fi
  echo "ee: push attempt $attempt failed" >&2
  sleep 2
done
die "could not push $remote_tag"
