"""A local Prefect server for the demo and for operators on one machine (UI on 127.0.0.1:4200).

A real `prefect server start` process, not the temporary test server: that one
is known to log "database is locked" under load (Prefect issues 18934, 19771).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from core.errors import ClinicflowError

HOME = Path("var/prefect")


class PrefectServer:
    def __init__(self, port: int = 4200, home: Path = HOME, launcher: tuple[str, ...] = ()):
        """launcher: a command to run the server under (e.g. strace, to see its connections)."""
        self.launcher = launcher
        self.port = port
        self.home = home.resolve()
        self.pidfile = self.home / "server.pid"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_API_URL": self.api_url,
        }

    def start(self, timeout_s: float = 120, progress=print) -> None:
        if self.healthy():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "server.log", "ab")
        cmd = [
            *self.launcher,
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        proc = subprocess.Popen(
            cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.pidfile.write_text(str(proc.pid))
        progress(f"starting a Prefect server on {self.ui_url} (logs in {self.home}/server.log) ...")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClinicflowError(
                    f"the Prefect server exited during start-up (code {proc.returncode}); see "
                    f"{self.home}/server.log; is port {self.port} taken?"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        raise ClinicflowError(
            f"the Prefect server did not answer on {self.api_url} within {timeout_s:.0f}s; see {self.home}/server.log"
        )

    def stop(self) -> bool:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.pidfile.unlink(missing_ok=True)
        return True
