#!/usr/bin/env bash
# Run the whole test suite: on MariaDB with a real Celery worker on Redis, then again on SQLite.
# Installs what is missing first (system packages need root), starts MariaDB and Redis if
# they do not answer. Extra arguments go to pytest (e.g. scripts/test.sh -k upload).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- system packages ------------------------------------------------------------------
need=()
for pkg in build-essential pkg-config libmariadb-dev chromium mariadb-server redis-server; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  # Services that are already there (installed outside apt) are not reinstalled.
  if command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; then need=("${need[@]/mariadb-server}"); fi
  if command -v redis-server >/dev/null; then need=("${need[@]/redis-server}"); fi
  pkgs=$(printf '%s ' "${need[@]}" | xargs)
  if [ -n "$pkgs" ]; then
    echo "Installing system packages: $pkgs"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  fi
fi

# --- Python packages ------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
# requirements-dev.txt includes requirements-ml.txt (torch, open_clip, onnxruntime: several GB, so
# CI caches .venv); the stamp covers every requirements file, so a changed pin reinstalls.
stamp=".venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-dev"
if [ ! -f "$stamp" ]; then
  echo "Installing Python packages (requirements-dev.txt, requirements-ml.txt)…"
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  touch "$stamp"
fi

# --- services -------------------------------------------------------------------------
if ! mariadb-admin ping --silent >/dev/null 2>&1; then
  echo "Starting MariaDB…"
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
    || $SUDO service mariadb start
  for _ in $(seq 60); do mariadb-admin ping --silent >/dev/null 2>&1 && break; sleep 1; done
fi
if ! mariadb -uroot -h127.0.0.1 -e "SELECT 1" >/dev/null 2>&1; then
  # Debian's package lets root in through the socket only; allow the empty TCP password too.
  $SUDO mariadb -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" || true
fi
if ! redis-cli ping >/dev/null 2>&1; then
  echo "Starting Redis…"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli ping >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb-admin ping >/dev/null
redis-cli ping >/dev/null

# --- static checks --------------------------------------------------------------------
export DJANGO_SETTINGS_MODULE=baggintag.settings.test
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-mysql://root@127.0.0.1:3306/baggintag}
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
# The suite runs offline like an ML worker (docs/taggers.md#tests): nothing may download models.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== static checks"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache >/dev/null
.venv/bin/python scripts/sizes.py
.venv/bin/mypy apps baggintag
.venv/bin/python manage.py check --fail-level WARNING
.venv/bin/python manage.py makemigrations --check --dry-run >/dev/null
.venv/bin/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# --- the suite, twice -----------------------------------------------------------------
echo "== tests on MariaDB (worker on Redis)"
.venv/bin/pytest --create-db "$@"
echo "== tests on SQLite (worker on the file broker)"
env -u TEST_DATABASE_URL -u REDIS_URL .venv/bin/pytest --create-db "$@"
