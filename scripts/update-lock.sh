#!/usr/bin/env bash
# Regenerate requirements.lock: kitt's runtime dependencies pinned for every Python kitt supports
# (3.10 and newer), with environment markers where a version differs. Both action flavours install
# under it as a pip constraint. Needs uv (pip install uv); run after changing pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
# The test-only tools pinned at the end (from their comment line on) are kept as they are.
test_tools="$(sed -n '/^# Test-only tools/,$p' requirements.lock)"
uv pip compile pyproject.toml --universal --python-version 3.10 --no-header --no-annotate --quiet \
  -o requirements.lock.new
{
  echo "# Runtime dependencies of kitt, pinned for Python >= 3.10. Regenerate: bash scripts/update-lock.sh"
  cat requirements.lock.new
  if [ -n "$test_tools" ]; then echo "$test_tools"; fi
} >requirements.lock
rm requirements.lock.new
