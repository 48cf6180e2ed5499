"""Print every runtime dependency of pyproject.toml pinned at its lower bound (``name==version``).

scripts/refresh-constraints.sh resolves the rest around these pins into constraints-lowest.txt,
the oldest versions scripts/test.sh runs the suite with, so that the bounds stay true. Runtime
means ``dependencies`` and the ``postgres`` extra; each needs a lower bound.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

RUNTIME_EXTRAS = ("postgres",)


def lower_bound(requirement: Requirement) -> str:
    """The version a ``>=``, ``~=`` or ``==`` specifier starts at."""
    bounds = [s.version for s in requirement.specifier if s.operator in (">=", "~=", "==")]
    if len(bounds) != 1:
        raise SystemExit(f"pyproject.toml: {requirement} needs exactly one lower bound (>=, ~= or ==)")
    return bounds[0]


def main(pyproject: Path) -> None:
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        specs += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for spec in specs:
        requirement = Requirement(spec)
        pins.setdefault(requirement.name, lower_bound(requirement))
    for name, version in sorted(pins.items(), key=lambda pin: pin[0].lower()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "pyproject.toml")
