"""A local PostgreSQL server for the lake's catalog, run from Debian's `postgresql` package.

Like the local broker: one folder (data, log, socket) under var/, listening on 127.0.0.1
only, started and stopped by `clinicflow postgres up|down|status`, idempotent, and `up`
returns once the server accepts connections. PostgreSQL refuses to run as root, so when
clinicflow runs as root the server runs as the package's `postgres` user, which owns the
folder; otherwise it runs as the invoking user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from warehouse.exceptions import CatalogSetupError

SERVICE_USER = "postgres"  # created by Debian's postgresql package
DATABASE = "clinicflow_lake"
ROLE = "clinicflow"


@dataclass(frozen=True)
class PostgresStatus:
    """What `clinicflow postgres status` reports (never the password)."""

    running: bool
    ready: bool
    address: str
    database: str
    detail: str


def find_binary(name: str) -> str:
    """The newest installed PostgreSQL's `name` (Debian keeps them out of PATH), else PATH's."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for folder in versions:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise CatalogSetupError(
            f"PostgreSQL's {name} is not installed; install Debian's package (`apt-get install postgresql`, "
            "which `make setup` does when it can) or point CLINICFLOW_LAKE_CATALOG at your own server"
        )
    return found


class LocalPostgres:
    """Initialise, start, probe and stop one local PostgreSQL server."""

    def __init__(self, home: Path, port: int, password: str):
        self.home = home.resolve()
        self.port = port
        self.password = password
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- whose process ------------------------------------------------------------
    def _owner(self) -> pwd.struct_passwd | None:
        """The service user when running as root; None: run as ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVICE_USER)
        except KeyError as e:
            raise CatalogSetupError(
                f"running as root, but there is no `{SERVICE_USER}` user to run PostgreSQL as (it refuses root); "
                "install Debian's postgresql package, which creates it"
            ) from e

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        owner = self._owner()
        cmd = ["runuser", "-u", owner.pw_name, "--", *args] if owner else args
        return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)

    def _prepare_folder(self) -> list[Path]:
        """The folder belongs to the server's user, and its ancestors let that user pass through
        (execute only: it still cannot list or read them); returns the folders opened so."""
        self.home.mkdir(parents=True, exist_ok=True)
        owner = self._owner()
        if owner is None:
            return []
        os.chown(self.home, owner.pw_uid, owner.pw_gid)
        self.home.chmod(0o700)
        opened = []
        for folder in self.home.parents:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                folder.chmod((mode & 0o7777) | 0o001)
                opened.append(folder)
        return opened

    # --- lifecycle -----------------------------------------------------------------
    def initialise(self) -> bool:
        """initdb once, with the clinicflow role and password; False when already done."""
        if (self.data / "PG_VERSION").exists():
            return False
        self._prepare_folder()
        with tempfile.NamedTemporaryFile("w", dir=self.home, delete=False) as f:
            f.write(self.password)
        pwfile = Path(f.name)
        owner = self._owner()
        if owner:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            done = self._run(
                [find_binary("initdb"), "-D", str(self.data), "-U", ROLE, f"--pwfile={pwfile}", "-E", "UTF8",
                 "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--no-instructions"]
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise CatalogSetupError(f"initdb failed in {self.data}: {done.stderr.strip()[-500:]}; see its message")
        return True

    def running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        return self._run([find_binary("pg_ctl"), "-D", str(self.data), "status"]).returncode == 0

    def up(self, timeout_s: float = 60, progress=print) -> PostgresStatus:
        """Start (initialising on first use) and wait until it accepts connections; idempotent."""
        if self.running():
            return self.wait_ready(timeout_s)
        if self.initialise():
            progress(f"initialised a PostgreSQL cluster in {self.data}")
        for folder in self._prepare_folder():
            progress(f"let the {SERVICE_USER} user pass through {folder} (execute only) to reach its data")
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.home}'"
        done = self._run(
            [find_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
             "-t", str(int(timeout_s)), "start"]
        )  # fmt: skip
        if done.returncode != 0:
            raise CatalogSetupError(
                f"PostgreSQL did not start on {self.address}: {done.stderr.strip()[-300:]}; see {self.log} "
                "(is the port taken? change CLINICFLOW_LOCAL_POSTGRES_PORT)"
            )
        status = self.wait_ready(timeout_s)
        self._ensure_database()
        progress(f"PostgreSQL ready on {self.address} (database {DATABASE}, data in {self.data})")
        return status

    def down(self) -> bool:
        """Stop the server (fast shutdown: sessions end, data is safe); False when it was not running."""
        if not self.running():
            return False
        done = self._run([find_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        if done.returncode != 0:
            raise CatalogSetupError(f"stopping PostgreSQL failed: {done.stderr.strip()[-300:]}; see {self.log}")
        return True

    # --- probing -------------------------------------------------------------------
    def _psql(self, sql: str, database: str = "postgres") -> subprocess.CompletedProcess:
        env = {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "3"}
        args = [find_binary("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, "-d", database]
        return subprocess.run([*args, "-tAc", sql], capture_output=True, text=True, env=env, timeout=30)

    def wait_ready(self, timeout_s: float) -> PostgresStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            if status.ready or time.monotonic() > deadline:
                if not status.ready:
                    raise CatalogSetupError(f"PostgreSQL on {self.address} is not ready: {status.detail}")
                return status
            time.sleep(0.3)

    def _ensure_database(self) -> None:
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'").stdout.strip()
        if exists != "1":
            done = self._psql(f"CREATE DATABASE {DATABASE}")
            if done.returncode != 0 and "already exists" not in done.stderr:
                raise CatalogSetupError(f"creating database {DATABASE} failed: {done.stderr.strip()}")

    def status(self) -> PostgresStatus:
        if not self.running():
            return PostgresStatus(False, False, self.address, DATABASE, "not running (clinicflow postgres up)")
        done = self._psql("SELECT 1")
        detail = "accepting connections" if done.returncode == 0 else done.stderr.strip()[-200:]
        return PostgresStatus(True, done.returncode == 0, self.address, DATABASE, detail)
