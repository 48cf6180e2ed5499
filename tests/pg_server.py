"""A dedicated PostgreSQL server that a test may stop and start (Debian's server binaries, as in
scripts/pg_temp.sh): for fault tests, which cannot share the suite's server."""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in p.split("/")[-2].split(".")])
    return Path(found[-1]) if found and os.access(Path(found[-1]) / "initdb", os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """``start()``, ``stop()`` (immediate: like a crash or a failover), ``url``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="recs-fault-pg."))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(f"{self.bin / 'initdb'} -D {self.dir / 'data'} -U postgres -A trust --no-sync -E UTF8")
        self.start()
        self._run(f"{self.bin / 'createdb'} -h 127.0.0.1 -p {self.port} -U postgres recs")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/recs"

    def _run(self, command: str) -> None:
        argv = ["su", "postgres", "-s", "/bin/bash", "-c", command] if self.as_root else ["bash", "-c", command]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        # fsync off is safe here (the machine does not crash, the server does), but commits are
        # synchronous: an immediate stop must lose no committed transaction
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off")
        self._run(f"{self.bin / 'pg_ctl'} -D {self.dir / 'data'} -l {self.dir / 'log'} -w "
                  f"-o {shlex.quote(options)} start")

    def stop(self) -> None:
        self._run(f"{self.bin / 'pg_ctl'} -D {self.dir / 'data'} -m immediate -w stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_server_or_skip() -> PgServer:
    bin_dir = _pg_bin()
    if bin_dir is None:
        if os.environ.get("RECS_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("fault tests need Debian's postgresql server binaries")
        pytest.skip("fault tests need Debian's postgresql server binaries (apt-get install postgresql)")
    return PgServer(bin_dir)
