"""``giftstream loadtest``: parse the flags, run, print the table, write the files."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from server.loadtest import report as reporting
from server.loadtest.config import ConfigError, add_arguments, from_arguments
from server.loadtest.plot import PlotError, write_plot
from server.loadtest.population import SetupError
from server.loadtest.runner import run

DESCRIPTION = (
    "Load-test a giftstream deployment in demo mode: make users and buy their coins "
    "through its API, open viewer, sender and overlay sockets, send gifts in streaks "
    "with big gifts and retries for --duration seconds, then print gifts acknowledged "
    "and events delivered per second, ack and send-to-delivery latency, errors by code, "
    "lost events and the server's memory."
)


def add_parser(commands: Any) -> None:
    """The ``loadtest`` subcommand, for ``giftstream``'s parser."""
    parser = commands.add_parser(
        "loadtest", help="load-test a running server", description=DESCRIPTION
    )
    add_arguments(parser)


def say(line: str) -> None:
    print(line, flush=True)


def main(args: argparse.Namespace) -> int:
    try:
        config = from_arguments(args)
    except ConfigError as exc:
        print(f"giftstream loadtest: error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run(config, say))
    except SetupError as exc:
        print(f"giftstream loadtest: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("giftstream loadtest: interrupted", file=sys.stderr)
        return 130
    print(reporting.table(report), flush=True)
    if config.json_path is not None:
        reporting.write_json(report, config.json_path)
        say(f"report written to {config.json_path}")
    if config.plot_path is not None:
        try:
            write_plot(report, config.plot_path)
        except PlotError as exc:
            print(f"giftstream loadtest: error: {exc}", file=sys.stderr)
            return 1
        say(f"plot written to {config.plot_path}")
    return 0
