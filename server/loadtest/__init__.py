"""``giftstream loadtest``: a load generator for any giftstream deployment.

It speaks only the documented protocol (docs/protocol.md) and the HTTP API,
so it runs against a remote deployment as well as a local demo server. Its
sockets open, encode and decode through ``server.client``, the package's
client of the protocol; what it adds is measuring, and reading each room
frame once for all the sockets that receive it. Modules, one job each:

- ``config``: the settings of a run, and their command-line flags;
- ``http``: a tiny JSON client of the HTTP API (standard library only);
- ``population``: users, tokens, coins and overlay keys made through the API,
  and the list of sockets to open, split over worker processes;
- ``patterns``: what a sender sends next (streaks, big gifts, retries), pure;
- ``wire``: room frames digested once per process, for every socket;
- ``clients``: viewer, overlay and sender sockets;
- ``stats``: mergeable histograms, counters and the per-second timeline;
- ``worker``: one asyncio loop running its share of the sockets;
- ``progress``: the one-line-a-second progress display;
- ``serverproc``: the server's process id and memory, on this machine;
- ``runner``: the whole run, in one process or several;
- ``report``, ``plot``: the table, the JSON and the PNG;
- ``command``: the ``giftstream loadtest`` subcommand.
"""
