"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on 127.0.0.1, a free port.

Uses Debian's ``postgresql`` package (``scripts/ci-deps.sh`` installs it). PostgreSQL refuses to
run as root, so under root the cluster belongs to the ``postgres`` system user the package
creates and the server commands run through ``runuser``. The superuser password is random and
passed to the tests through the environment, as a real deployment would.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    port: int
    password: str
    user: str = "audit"

    def url(self, db: str = "postgres", *, with_password: bool = False) -> str:
        pw = f":{self.password}" if with_password else ""
        return f"postgresql+psycopg://{self.user}{pw}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             password=self.password, dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return name


class PgCluster:
    """Start with ``start()``, always ``stop()`` (the data directory is removed)."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found; run scripts/ci-deps.sh "
                               "(apt-get install postgresql)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="crm-audit-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0
        self.server: PgServer | None = None

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd=self.root)

    def start(self) -> PgServer:
        password = secrets.token_urlsafe(16)
        pwfile = self.root / "pw"
        pwfile.write_text(password)
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "audit", "-A", "scram-sha-256",
                  "--pwfile", str(pwfile), "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        port = _free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories={self.root} -c fsync=off -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        self.server = PgServer(port=port, password=password)
        return self.server

    def stop(self) -> None:
        try:
            if self.data.exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
