"""``giftstream`` on the command line (also ``python -m server``): the parser and
``main``, which hands each subcommand to its module in ``server/commands/``.

``giftstream serve`` reads the settings from the environment, lets flags
override them, and runs (``server/commands/serving.py``); ``--reset`` wipes a
demo's data before anything starts (``server/commands/demo_data.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server import settings as settings_module
from server.commands.banner import version
from server.commands.errors import ServeError, say_error
from server.commands.help_format import CommandParser, escape_percent, shown_default
from server.commands.ledger import ledger_command
from server.commands.reconcile import reconcile_command
from server.commands.serving import serve
from server.logs import parse_level
from server.ops.embedded import EmbeddedValkeyError
from server.settings import LOG_FORMATS, Settings, SettingsError, env_name

_SETTING_DEFAULTS = {item.name: item.default for item in dataclasses.fields(Settings)}


def _setting_help(text: str, name: str, unset: str = "unset") -> str:
    """``text``, then the setting's default and the variable it is read from."""
    default = _SETTING_DEFAULTS[name]
    shown = unset if default is None else shown_default(default)
    return escape_percent(f"{text} (default: {shown}; {env_name(name)})")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="giftstream",
        description="Real-time gifting server for live streams.",
    )
    parser.add_argument("--version", action="version", version=f"giftstream {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(commands)
    _add_reconcile(commands)
    _add_ledger(commands)
    _add_loadtest(commands)
    return parser


def _add_ledger(commands: Any) -> None:
    ledger = commands.add_parser(
        "ledger",
        help="export the ledger for an auditor, or verify an export offline",
        description=(
            "Every ledger entry carries the hash of the entry before it in its wallet's "
            "ledger (docs/money.md). `export` writes every wallet's ledger to a file of "
            "JSON lines; `verify` checks such a file without Redis: each chain, and "
            "every balance recomputed from the entries. Exits 1 on a broken chain."
        ),
    )
    actions = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write every wallet's ledger to FILE (JSON lines)",
        description="Write every wallet's ledger to FILE, whole or not at all.",
    )
    export.add_argument("file", type=Path, metavar="FILE")
    _add_redis_arguments(export)
    verify = actions.add_parser(
        "verify",
        help="check an export's hash chains and balances, offline",
        description=(
            "Check FILE, an export, with no Redis: each wallet's hash chain, entry by "
            "entry, and its balances recomputed from its entries. Reports the first "
            "broken link; exits 1 if there is one."
        ),
    )
    verify.add_argument("file", type=Path, metavar="FILE")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")


def _add_loadtest(commands: Any) -> None:
    # The load generator is a client: imported only when the parser is built.
    from server.loadtest.command import add_parser

    add_parser(commands)


def _add_redis_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the data is: the flags ``serve`` and ``reconcile`` share."""
    # Defaults are None so that an absent flag leaves the environment's value.
    parser.add_argument(
        "--redis-url",
        help=_setting_help("Redis or Valkey URL", "redis_url", "unset, an embedded Valkey"),
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        default=None,
        help=_setting_help(
            "the Redis URL is a seed node of a Redis Cluster; with no URL, "
            "an embedded 3-primary Valkey Cluster",
            "redis_cluster",
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=_setting_help("where the embedded Valkey keeps its data", "data_dir"),
    )
    parser.add_argument(
        "--key-prefix", help=_setting_help("prefix of every Redis key", "key_prefix")
    )


def _add_reconcile(commands: Any) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="check the books: every money invariant, from Redis",
        description=(
            "Read every wallet, its ledger and the outboxes, and check the invariants "
            "(docs/money.md). Prints a report; exits 1 on any breach, 2 when there is "
            "nothing to check. With no Redis URL it checks the embedded Valkey that a "
            "running `giftstream serve` holds."
        ),
    )
    _add_redis_arguments(reconcile)
    reconcile.add_argument(
        "--settled",
        action="store_true",
        help="also count credits still waiting for settlement as breaches",
    )
    reconcile.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run a server",
        description=(
            "Run a giftstream server. Every flag overrides its environment variable "
            "(GIFTSTREAM_<NAME>, or REDIS_URL). With no Redis URL, an embedded Valkey "
            "is started with its data under --data-dir."
        ),
    )
    serve.add_argument("--host", help=_setting_help("address to listen on", "host"))
    serve.add_argument(
        "--port", type=int, help=_setting_help("port to listen on; 0 picks a free one", "port")
    )
    _add_redis_arguments(serve)
    serve.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help=_setting_help(
            "demo mode: demo users, development tokens and sandbox payments, for a laptop demo",
            "demo",
        ),
    )
    serve.add_argument(
        "--reset",
        action="store_true",
        help="with --demo only: start from fresh demo data. Deletes the embedded Valkey's "
        "data, or with a Redis URL every key under the key prefix, then seeds the demo again",
    )
    serve.add_argument(
        "--log-level",
        help=_setting_help("DEBUG, INFO, WARNING or ERROR", "log_level"),
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help=_setting_help(
            "human: short lines; json: one JSON object a line; auto: human when stderr "
            "is a terminal, else json",
            "log_format",
        ),
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help=_setting_help(
            "log every HTTP request and every WebSocket accepted or refused (off: JSON "
            "logs still have the WebSocket lines, a terminal's human logs leave them out)",
            "access_log",
        ),
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags laid over them."""
    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "redis_url": args.redis_url,
        "redis_cluster": args.redis_cluster,
        "data_dir": args.data_dir,
        "key_prefix": args.key_prefix,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "access_log": args.access_log,
    }
    settings = settings_module.from_environment().with_overrides(**overrides)
    if args.demo:
        settings = settings_module.in_demo_mode(settings)
    settings.validate()
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "reconcile":
        return reconcile_command(args)
    if args.command == "ledger":
        return ledger_command(args)
    if args.command == "loadtest":
        from server.loadtest.command import main as loadtest_main

        return loadtest_main(args)
    if args.command != "serve":
        parser.print_help()
        return 2
    # Only the flag counts, not GIFTSTREAM_DEMO: a deployment's environment
    # must never turn a stray --reset into a wipe.
    if args.reset and not args.demo:
        say_error("--reset deletes data, so it is refused without --demo (a demo's data only)")
        return 2
    try:
        settings = settings_from(args)
        parse_level(settings.log_level)
    except (SettingsError, ValueError) as exc:
        parser.error(str(exc))
    try:
        return asyncio.run(serve(settings, reset=args.reset))
    except (EmbeddedValkeyError, ServeError) as exc:
        say_error(str(exc))
        return 1
