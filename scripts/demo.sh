#!/usr/bin/env bash
# Set up and run the demo shop with storefront-recs mounted, on embedded SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q -c constraints.txt --upgrade pip
.venv/bin/pip install -q -c constraints.txt --build-constraint constraints.txt --only-binary numpy,scipy -e .
export FLASK_APP=examples.demo_shop.app:create_app
export DEMO_INSTANCE=${DEMO_INSTANCE:-$PWD/instance/demo}
.venv/bin/flask recs db upgrade
.venv/bin/flask demo seed
if .venv/bin/flask recs --help | grep -q ' train '; then
  .venv/bin/flask recs train
fi
echo "Demo shop: http://${DEMO_HOST:-127.0.0.1}:${DEMO_PORT:-5000}"
exec .venv/bin/flask run --host "${DEMO_HOST:-127.0.0.1}" --port "${DEMO_PORT:-5000}"
