"""The subcommands of ``giftstream`` (``server/cli.py`` parses the command line):
serving, reconciling, a demo's data, the banner, and ``--help`` with defaults."""
