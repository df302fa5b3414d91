#!/usr/bin/env bash
# Quick static checks, no root and no services: ruff (lint and format), import-linter, mypy.
# Runs every check and fails at the end if any failed. Needs .venv with requirements-dev.txt.
set -uo pipefail
cd "$(dirname "$0")/.."

for tool in ruff lint-imports mypy; do
  if [ ! -x ".venv/bin/$tool" ]; then
    echo "scripts/lint.sh: .venv/bin/$tool is missing." >&2
    echo "  Run scripts/test.sh once (creates .venv with requirements-dev.txt), or:" >&2
    echo "  python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
    echo "  (the MariaDB driver in it builds with pkg-config and libmariadb-dev)." >&2
    exit 2
  fi
done

# mypy's Django plugin loads these settings; they need no database or broker.
export DJANGO_SETTINGS_MODULE=baggintag.settings.test
failed=()
check() {
  echo "== $*"
  "$@" || failed+=("$*")
}
check .venv/bin/ruff check .
check .venv/bin/ruff format --check .
check .venv/bin/lint-imports --no-cache
check .venv/bin/mypy apps baggintag
check .venv/bin/python scripts/sizes.py

if [ ${#failed[@]} -gt 0 ]; then
  echo >&2
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  echo "(ruff check --fix . and ruff format . fix most ruff findings)" >&2
  exit 1
fi
echo "All checks passed."
