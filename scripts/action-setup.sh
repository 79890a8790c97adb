#!/usr/bin/env bash
# Set up kitt for the composite action: a virtual environment under the runner's tool cache,
# keyed on the action's own files, so a warm self-hosted runner reuses it in seconds.
# Writes the venv's python to the step output "python".
set -euo pipefail

action_path="${ACTION_PATH:?ACTION_PATH must point at the action folder}"
cache_root="${RUNNER_TOOL_CACHE:-${HOME}/.cache}/kitt-action"

fail() {
  echo "::error title=kitt set-up::$1"
  exit 1
}

python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    python=$(command -v "$candidate")
    break
  fi
done
[ -n "$python" ] || fail "kitt needs Python 3.10 or newer with the venv module on the runner. Install python3 and python3-venv, or add actions/setup-python before this step."

# The key covers everything that decides the installed result: the lock, the package and Python.
key=$(
  cd "$action_path"
  {
    "$python" -c 'import sys; print(sys.version)'
    sha256sum requirements.lock pyproject.toml
    find kitt -type f -name '*.py' -o -type f -name '*.yaml' -o -type f -name '*.j2' | LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -c1-16
)
venv="$cache_root/$key"

if [ ! -f "$venv/.complete" ]; then
  echo "Installing kitt into $venv"
  mkdir -p "$cache_root"
  staging=$(mktemp -d "$cache_root/.staging-XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  "$python" -m venv "$staging" || fail "could not create a virtual environment with $python: install python3-venv."
  "$staging/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --constraint "$action_path/requirements.lock" "$action_path" || fail "installing kitt's pinned dependencies failed (see the log above)."
  "$staging/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-deps "$action_path" ||
    fail "installing kitt failed (see the log above)."
  touch "$staging/.complete"
  # Another job on the same runner may have finished first: keep theirs, drop ours.
  if ! mv -T "$staging" "$venv" 2>/dev/null; then
    rm -rf "$staging"
  fi
  trap - EXIT
else
  echo "Reusing kitt from $venv"
fi

echo "python=$venv/bin/python" >>"${GITHUB_OUTPUT:-/dev/stdout}"
