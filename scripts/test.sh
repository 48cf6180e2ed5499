#!/usr/bin/env bash
# Set up a virtualenv and run every check: ruff, mypy, import layers, the snippet build check and
# the tests of the core and of every plugin in plugins/ (SQLite always; PostgreSQL through a
# throwaway server when Debian's postgresql is installed), then the tests once more in
# .venv-lowest with the oldest versions pyproject.toml admits.
# Versions come from constraints.txt and constraints-lowest.txt (scripts/refresh-constraints.sh).
# RECS_TEST_LOWEST=0 skips the second run (for a quick local check; CI always runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# venv DIR CONSTRAINTS: a virtualenv with this project, its dev extra and every first-party
# plugin (each its own distribution) at the pinned versions
venv() {
  [ -x "$1/bin/python" ] || "$PYTHON" -m venv "$1"
  "$1/bin/pip" install -q -c constraints.txt --upgrade pip
  # numpy and scipy from wheels only: no bound may send CI into a source build of them
  local editable=(-e '.[dev]')
  for plugin in plugins/*/; do editable+=(-e "$plugin"); done
  "$1/bin/pip" install -q -c "$2" --build-constraint constraints.txt --only-binary numpy,scipy "${editable[@]}"
}

venv .venv constraints.txt
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
if [ "${RECS_TEST_LOWEST:-1}" != "0" ]; then
  # The oldest supported versions: the same suite (SQLite and PostgreSQL, Chromium included)
  echo "test.sh: the suite again with the oldest versions pyproject.toml admits (.venv-lowest)" >&2
  venv .venv-lowest constraints-lowest.txt
  .venv-lowest/bin/pytest -q -p no:cacheprovider tests plugins/*/tests "$@"
fi
