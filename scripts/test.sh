#!/usr/bin/env bash
# Set up a virtualenv and run every check: ruff, mypy, import layers, the snippet build check and
# the tests of the core and of every plugin
# (SQLite always; PostgreSQL through a throwaway server when Debian's postgresql is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
# First-party plugins (plugins/<name>/) are separate distributions: install each, test each below.
for plugin in plugins/*/; do .venv/bin/pip install -q -e "$plugin"; done
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports   # the layer contracts in pyproject.toml
# The snippet: node unit tests, then a fresh build that must fit the size budget and equal the
# committed storefront_recs/static/storefront_recs/recs.min.js.
(cd js-snippet && npm ci --no-audit --no-fund --loglevel=error && npm test && npm run --silent check)
if [ -z "${RECS_TEST_POSTGRES_URL:-}" ]; then
  source scripts/pg_temp.sh
fi
.venv/bin/pytest -q tests plugins/*/tests "$@"
