"""The server process's memory, when it runs on this machine (Linux /proc).

Given no ``--server-pid``, a server on a loopback address is found by the
port it listens on: the socket's inode in ``/proc/net/tcp*``, then the
process holding that inode among its file descriptors. Processes of other
users cannot be read without privileges; the report then says "unknown".
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

PROC = Path("/proc")
TCP_LISTEN = "0A"


def local_port(base_url: str) -> int | None:
    """The port of ``base_url`` if its host is this machine's loopback, else None."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            return None
    return parts.port or (443 if parts.scheme == "https" else 80)


def listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def pid_listening_on(port: int) -> int | None:
    targets = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not targets:
        return None
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name)
        except OSError:
            continue
    return None


def find_server_pid(base_url: str) -> int | None:
    port = local_port(base_url)
    return None if port is None else pid_listening_on(port)


def rss_bytes(pid: int) -> int | None:
    """The resident set size of ``pid`` (VmRSS), or None if it cannot be read."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
