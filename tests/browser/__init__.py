"""Browser tests (a package, so that its conftest and the top-level one keep apart)."""
