"""`scripts/giftstream`: the command line, from a checkout, with .venv set up first.

The script runs in a copy of the checkout's layout: its own `scripts/giftstream`,
a stand-in `scripts/_venv` that records what it was asked (the real one
would install packages into the .venv that these tests are running from),
and `.venv` pointing at this interpreter's environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from server.settings import ENV_PREFIX
from tests.conftest import REPO_ROOT
from tests.test_demo_reset import alice_sends_roses, demo_server, embedded

SCRIPT = REPO_ROOT / "scripts" / "giftstream"
RUN_TIMEOUT = 60.0
FAKE_VENV = """#!/usr/bin/env bash
echo "$@" >> "$(dirname "$0")/../venv-calls"
exit "${FAKE_VENV_STATUS:-0}"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, root / "scripts" / "giftstream")
    fake = root / "scripts" / "_venv"
    fake.write_text(FAKE_VENV)
    fake.chmod(0o755)
    venv = Path(sys.prefix)
    assert (venv / "bin" / "giftstream").is_file(), f"no giftstream in {venv}: run scripts/_venv"
    (root / ".venv").symlink_to(venv)
    return root


def plain_environment(**extra: str) -> dict[str, str]:
    """A newcomer's environment: no giftstream settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ENV_PREFIX) and name != "REDIS_URL"
    }
    return env | extra


async def giftstream(
    checkout: Path, *arguments: str, cwd: Path, **env: str
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(checkout / "scripts" / "giftstream"), *arguments,
        cwd=cwd, env=plain_environment(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_the_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)


async def test_help_sets_up_the_venv_and_exits_zero(checkout: Path, tmp_path: Path) -> None:
    status, out, err = await giftstream(checkout, "--help", cwd=tmp_path)
    assert status == 0, err
    assert out.startswith("usage: giftstream ")
    assert "reconcile" in out
    assert (checkout / "venv-calls").read_text() == "run\n"


async def test_a_failed_setup_runs_nothing(checkout: Path, tmp_path: Path) -> None:
    status, out, _ = await giftstream(checkout, "--help", cwd=tmp_path, FAKE_VENV_STATUS="3")
    assert (status, out) == (3, "")


async def test_arguments_pass_through_as_given(checkout: Path, tmp_path: Path) -> None:
    status, _, err = await giftstream(checkout, "serve", "--port", "80 80", cwd=tmp_path)
    assert status == 2
    assert "invalid int value: '80 80'" in err


async def test_reconcile_from_the_checkout_finds_the_running_demo(checkout: Path) -> None:
    # `scripts/serve` keeps its data in .giftstream at the root of the checkout.
    data_dir = checkout / ".giftstream"
    server = await demo_server(embedded(data_dir), data_dir)
    try:
        await alice_sends_roses(server, 5)
        status, out, err = await giftstream(checkout, "reconcile", cwd=checkout)
        assert status == 0, out + err
        assert "books balance: no breach" in out
        assert "gifts in ledgers: 1" in out
    finally:
        assert await server.stop() == 0
    # Once it has stopped there is nothing to check: a clear line, no traceback.
    status, out, err = await giftstream(checkout, "reconcile", cwd=checkout)
    assert (status, out) == (2, "")
    assert err.startswith("giftstream: error: no Redis to check: ")
