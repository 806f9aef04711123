"""How many connections one client address may hold open in this process.

One address that opens thousands of sockets (idle, half a request, or room
sockets it never reads) would spend the process's file descriptors and
memory for everyone else. Each connection takes a ``Lease`` on its client
address when it is accepted; past ``limit`` leases the connection is
answered 429 ``too_many_connections`` and closed at once, before a byte of
it is read, so a flood costs a file descriptor for microseconds only.

The lease follows the socket, not the protocol object: a room socket starts
as an HTTP request and is handed to the WebSocket protocol on upgrade, and
whichever protocol holds the lease when the connection ends gives it back.

Addresses in ``exempt`` (by default this machine's own, 127.0.0.1 and ::1)
are not capped: a reverse proxy on this machine speaks for all its clients
from one address, and so do the load tools. The cap is per process; with
several processes a client may hold ``limit`` in each.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable

from server.ops.socket_faults import OncePerSecond, SocketFaults

log = logging.getLogger(__name__)

_TOO_MANY = (
    b"HTTP/1.1 429 Too Many Requests\r\n"
    b"content-type: application/problem+json\r\nconnection: close\r\nretry-after: 1\r\n"
    b"content-length: %d\r\n\r\n%s"
)


def normal_address(address: str) -> str:
    """One spelling per client: an IPv4 address mapped into IPv6 is the IPv4 one."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def refusal(limit: int) -> bytes:
    """The whole answer to a connection over the cap (written before any request)."""
    body = json.dumps(
        {
            "code": "too_many_connections",
            "title": "TooManyConnections",
            "status": 429,
            "detail": f"this address holds {limit} connections already: close some and retry",
            "temporary": True,
        }
    ).encode()
    return _TOO_MANY % (len(body), body)


class Lease:
    """One connection's place in its address's count; given back once."""

    __slots__ = ("_caps", "address")

    def __init__(self, caps: ConnectionCaps | None, address: str) -> None:
        # None for an address that is not counted: releasing it does nothing.
        self._caps = caps
        self.address = address

    def release(self) -> None:
        caps, self._caps = self._caps, None
        if caps is not None:
            caps.give_back(self.address)


class ConnectionCaps:
    """Open connections per client address, against a limit."""

    def __init__(self, limit: int, exempt: Iterable[str] = ("127.0.0.1", "::1")) -> None:
        self.limit = limit
        self.exempt = frozenset(normal_address(a) for a in exempt)
        self._open: dict[str, int] = {}
        self._say_refused = OncePerSecond(log, "connections refused: over the per-address cap")

    def take(self, address: str | None) -> Lease | None:
        """A lease for a new connection from ``address``; None when it is over the cap.

        An exempt address, or a socket without one (a Unix socket), gets a
        lease that counts nothing.
        """
        address = normal_address(address) if address else ""
        if not address or address in self.exempt:
            return Lease(None, address)
        held = self._open.get(address, 0)
        if held >= self.limit:
            SocketFaults.over_address_cap += 1
            self._say_refused(address=address, limit=self.limit)
            return None
        self._open[address] = held + 1
        return Lease(self, address)

    def give_back(self, address: str) -> None:
        held = self._open.get(address, 0) - 1
        if held > 0:
            self._open[address] = held
        else:
            self._open.pop(address, None)
