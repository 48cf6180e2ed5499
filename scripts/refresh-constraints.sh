#!/usr/bin/env bash
# Rewrite the two pin files scripts/test.sh installs from, each from a fresh virtualenv:
#   constraints.txt         the newest releases pyproject.toml admits today (plus pip and the
#                           build backend), so that no new release changes what CI runs
#   constraints-lowest.txt  every runtime dependency at the lower bound pyproject.toml gives it
#                           (scripts/lowest_bounds.py), the rest resolved around those pins
# Run it after changing dependencies in pyproject.toml or to take new releases, then run
# scripts/test.sh and commit the two files with the change. See docs/development.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A fresh venv in $WORK/$1 with this project and its dev extra installed, pip options "${@:2}".
fresh_venv() {
  local venv="$WORK/$1"; shift
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "$@" -e '.[dev]'
  "$venv/bin/pip" check
}

# The pins of a venv: every installed distribution but this project and the venv's own setuptools.
pins() {
  "$WORK/$1/bin/pip" freeze --all --exclude-editable | grep -v -i -e '^setuptools==' -e '^storefront-recs'
}

header() {
  echo "# $1"
  echo "# Written by scripts/refresh-constraints.sh ($("$PYTHON" -c 'import platform; print("Python", platform.python_version(), platform.machine())')); do not edit by hand."
}

fresh_venv newest
# the build backend pyproject.toml names, at the versions pip picks today (for --build-constraint)
"$WORK/newest/bin/python" - "$WORK/build.txt" <<'PY'
import sys, tomllib
requires = tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]
open(sys.argv[1], "w").write("\n".join(requires) + "\n")
PY
"$WORK/newest/bin/pip" install -q --dry-run --ignore-installed --report "$WORK/build.json" -r "$WORK/build.txt"
{
  header "The newest versions CI installs: pip install -c constraints.txt --build-constraint constraints.txt ..."
  { pins newest
    "$WORK/newest/bin/python" - "$WORK/build.json" <<'PY'
import json, sys
for item in json.load(open(sys.argv[1]))["install"]:
    print("{name}=={version}".format(**item["metadata"]))
PY
  } | sort -f -u
} > constraints.txt

"$WORK/newest/bin/python" scripts/lowest_bounds.py > "$WORK/floors.txt"
# numpy and scipy from wheels only: a floor without a Python wheel for this Python is raised instead
fresh_venv lowest -c "$WORK/floors.txt" --build-constraint constraints.txt --only-binary numpy,scipy
{
  header "The oldest versions pyproject.toml admits, for the second run of scripts/test.sh (.venv-lowest)"
  pins lowest | sort -f
} > constraints-lowest.txt
echo "refresh-constraints: wrote constraints.txt ($(grep -vc '^#' constraints.txt) pins) and constraints-lowest.txt ($(grep -vc '^#' constraints-lowest.txt) pins)" >&2
