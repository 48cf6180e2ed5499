#!/usr/bin/env bash
# Set up a virtualenv and run every check: ruff, mypy, the snippet build check and the tests
# (SQLite always; PostgreSQL through a throwaway server when Debian's postgresql is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/mypy
# The snippet: node unit tests, then a fresh build that must fit the size budget and equal the
# committed storefront_recs/static/storefront_recs/recs.min.js.
(cd js-snippet && npm ci --no-audit --no-fund --loglevel=error && npm test && npm run --silent check)
if [ -z "${RECS_TEST_POSTGRES_URL:-}" ]; then
  source scripts/pg_temp.sh
fi
.venv/bin/pytest -q "$@"
