#!/usr/bin/env bash
# Test set-up only (never part of the product): Podman and a Debian base image for the `podman` tests.
#
#   bash scripts/setup-podman.sh        prints the base image's name on its last line, or nothing
#
# Idempotent. It acts only as root on Linux; elsewhere it says why and exits 0, and the podman tests
# skip with that reason. What it does:
# 1. installs Debian's podman, runc and mmdebstrap when they are missing;
# 2. writes /etc/containers/containers.conf (runc, cgroupfs, file events, ulimits within the VM's hard
#    limits: crun refuses these VMs' hybrid cgroups), only when the file does not exist or carries
#    this script's mark, so a machine's own configuration is never overwritten;
# 3. builds a minimal Debian rootfs with mmdebstrap (about 2 minutes), cached in
#    $KITT_TEST_CACHE/podman (default ~/.cache/kitt-tests) under a key of the suite and package
#    list, and imports it as localhost/kitt-test-base:KEY (no registry serves images here).
set -euo pipefail

SUITE="bookworm"
PACKAGES="python3,python3-pip,python-is-python3,ca-certificates"
MARK="# written by kitt's scripts/setup-podman.sh (test set-up); delete this line to keep your own edits"
CONF="/etc/containers/containers.conf"

say() { echo "setup-podman: $*" >&2; }

if [ "$(uname -s)" != "Linux" ] || [ "$(id -u)" != "0" ]; then
  say "skipped: needs root on Linux (the podman tests will skip)"
  exit 0
fi

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    say "skipped: could not install ${need[*]} with apt-get (the podman tests will skip)"
    exit 0
  fi
fi

if [ ! -e "$CONF" ] || head -n 1 "$CONF" | grep -qxF "$MARK"; then
  mkdir -p "$(dirname "$CONF")"
  cat >"$CONF.kitt-tmp" <<EOF
$MARK
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  mv "$CONF.kitt-tmp" "$CONF"
else
  say "keeping $CONF: it was not written by this script"
fi

key="$(printf '%s %s v1' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)"
image="localhost/kitt-test-base:$key"
if ! podman image exists "$image"; then
  cache="${KITT_TEST_CACHE:-$HOME/.cache/kitt-tests}/podman"
  tarball="$cache/rootfs-$SUITE-$key.tar"
  if [ ! -s "$tarball" ]; then
    mkdir -p "$cache"
    say "building a $SUITE rootfs with $PACKAGES (about 2 minutes, once)"
    # pip.conf: Debian's pip refuses system-wide installs (PEP 668); the Dockerfile's pip install
    # must work in this image as it does in the python image the Dockerfile names.
    mmdebstrap --quiet --variant=minbase --format=tar --include="$PACKAGES" \
      --customize-hook='printf "[global]\nbreak-system-packages = true\n" > "$1/etc/pip.conf"' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      "$SUITE" "$tarball.partial"
    mv "$tarball.partial" "$tarball"
  fi
  podman import --quiet "$tarball" "$image" >/dev/null
fi
echo "$image"
