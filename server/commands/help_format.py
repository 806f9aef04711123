"""``--help`` that shows every option's default."""

from __future__ import annotations

import argparse
import re
from typing import Any


def shown_default(value: object) -> str:
    """A default as ``--help`` shows it: switches as on and off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Ends each option's help with its default, unless the help gives it already.

    Unlike argparse's ArgumentDefaultsHelpFormatter, a default of None is not
    shown: ``serve``'s flags default to None so that an absent flag leaves
    the environment's value, and their help names the setting's own default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        # A help that already speaks of its default ("default 0.02", "default:
        # watchers are anonymous", "%(default)s") says it in its own words.
        if action.default in (None, argparse.SUPPRESS) or re.search(r"\bdefault\b", text):
            return text
        return f"{text} (default: {escape_percent(shown_default(action.default))})".strip()


def escape_percent(text: str) -> str:
    """``text`` as argparse's %-formatting of a help string gives it back."""
    return text.replace("%", "%%")


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose help shows every default, its subcommands' too.

    Subcommand parsers are made of the parent's class, so ``loadtest`` (which
    adds its own parser) gets the same help without knowing of it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        # argparse prints no help line at all, default included, for an
        # option without help.
        if action.help is None and action.default not in (None, argparse.SUPPRESS):
            action.help = f"(default: {escape_percent(shown_default(action.default))})"
        return action
