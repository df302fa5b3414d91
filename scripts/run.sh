#!/usr/bin/env bash
# Install what is missing and run Baggintag in the embedded mode: SQLite and media in ./data,
# a file-spool Celery broker (no Redis), one worker process beside the web server.
# Set DATABASE_URL / REDIS_URL (see .env.example) to use MariaDB and Redis instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PORT=${PORT:-8000}
reqs=requirements.txt
if [[ "${DATABASE_URL:-}" == mysql* ]]; then reqs=requirements-mariadb.txt; fi

if [ ! -x .venv/bin/python ]; then
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "$PYTHON is not installed. On Debian/Ubuntu: sudo apt install python3 python3-venv" >&2
    exit 1
  fi
  # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package.
  if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
    version=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>/dev/null || echo 3)
    echo "Python's venv module is missing, so .venv cannot be created." >&2
    echo "On Debian/Ubuntu install it with:  sudo apt install python3-venv  (or python${version}-venv)" >&2
    echo "then run scripts/run.sh again." >&2
    exit 1
  fi
  echo "Creating the virtual environment (.venv)…"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-${reqs}"
if [ ! -f "$stamp" ]; then
  echo "Installing Python packages from $reqs…"
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$reqs"
  touch "$stamp"
fi

# The embedded settings (DEBUG off, a generated key kept in the data folder), named for every
# process: wsgi.py and celery.py default to production settings, which need DJANGO_SECRET_KEY.
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-baggintag.settings.base}
mkdir -p "${BAGGINTAG_DATA_DIR:-data}"
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py collectstatic --noinput -v0
.venv/bin/python manage.py bootstrap

logdir="${BAGGINTAG_DATA_DIR:-data}"
# -B: the worker also runs beat (the job sweeper and the other periodic tasks; one machine only).
# Every queue, ML ones included (docs/taggers.md#queues); ML workers run offline (docs/operations.md#ml-workers).
DJANGO_SETTINGS_MODULE="$DJANGO_SETTINGS_MODULE" \
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="${BAGGINTAG_MODEL_DIR:-$logdir/models}/hf_home" \
  .venv/bin/celery -A baggintag worker -B -Q default,media,ml,ml_cpu,ml_caption -c 2 --loglevel INFO >"$logdir/worker.log" 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null' EXIT INT TERM
echo "Worker started (log: $logdir/worker.log)."
echo
echo "  Baggintag is running at http://127.0.0.1:${PORT}/  (log in as the administrator above)"
echo "  Press Ctrl+C to stop."
echo
.venv/bin/gunicorn baggintag.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --timeout 300 \
  --env "DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE}" --access-logfile - --log-level warning
