"""Nothing phones home: reading strace's record of connection attempts.

The main job runs traced in tests/clinicflow/test_demo.py (the demo's first run and its Prefect
server, with default settings); these helpers find a non-loopback address in what strace wrote.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import time
import warnings
from pathlib import Path

import pytest

INET = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def remote_addresses(trace: str) -> list[str]:
    """Addresses of connect() calls that are not loopback (AF_UNIX and netlink are local by nature)."""
    out = []
    for line in trace.splitlines():
        if "connect(" not in line:
            continue
        for v4, v6 in INET.findall(line):
            ip = ipaddress.ip_address(v4 or v6)
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
                out.append(line.strip())
    return out


def test_remote_addresses_are_recognised():
    trace = """123 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("104.16.1.1")}, 16) = -1
124 connect(4, {sa_family=AF_INET, sin_port=htons(19092), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
125 connect(5, {sa_family=AF_INET6, sin6_port=htons(4200), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = 0
126 connect(6, {sa_family=AF_INET6, sin6_port=htons(53), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr)}, 28) = 0
127 connect(7, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0"""
    assert [line.split()[0] for line in remote_addresses(trace)] == ["123", "126"]


def reap(pid: int, timeout_s: float = 30) -> None:
    """Wait (bounded) for the traced server's strace to exit, so its trace is complete."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return
        time.sleep(0.2)


def strace(trace: Path) -> list[str]:
    # seccomp-bpf stops the traced processes on connect() only, not on every system call.
    return ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "-o", str(trace)]


def tracing() -> bool:
    """strace is here (CI installs it: a missing one fails there, and is skipped elsewhere)."""
    if shutil.which("strace") is not None:
        return True
    if os.environ.get("CI"):
        pytest.fail("strace is missing: .ci/run installs it (Debian package strace)")
    warnings.warn("strace is not installed here (apt-get install strace; CI installs it): connections untraced")
    return False
