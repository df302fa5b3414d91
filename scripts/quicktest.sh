#!/usr/bin/env bash
# Fast tests, no root and no services: SQLite and the file-spool broker, in this process.
# Skips the `browser` (Chromium), `mariadb` and `slow` tests; `flow` tests run, since their
# Celery worker is a thread on the file broker. Extra arguments go to pytest, e.g.
#   scripts/quicktest.sh tests/media -x       scripts/quicktest.sh -m flow
# scripts/test.sh runs everything (MariaDB and Redis, then SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/pytest ]; then
  echo "scripts/quicktest.sh: .venv/bin/pytest is missing." >&2
  echo "  Run scripts/test.sh once (creates .venv with requirements-dev.txt), or:" >&2
  echo "  python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
  echo "  (the MariaDB driver in it builds with pkg-config and libmariadb-dev)." >&2
  exit 2
fi

# pyproject.toml picks baggintag.settings.test; without these two it uses SQLite in the temp
# folder and a spool-folder broker, both named by process id.
unset TEST_DATABASE_URL REDIS_URL DJANGO_SETTINGS_MODULE
exec .venv/bin/pytest -q -m "not browser and not mariadb and not slow" "$@"
