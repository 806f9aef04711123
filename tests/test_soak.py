"""The crash soak of scripts/soak.py, short: money survives SIGKILL of servers and Valkey.

Two server processes and a Valkey of the soak's own (AOF, appendfsync
always) in a temporary directory; viewers buy coins and send gifts, retrying
by request id, while server processes and Valkey are killed with SIGKILL and
restarted. Afterwards every acknowledged gift must be in its sender's ledger,
no request id may be debited twice, every debit must have been acknowledged,
each viewer's coins must add up, and ``giftstream reconcile --settled`` must
find nothing. SIGKILL tests crash consistency, not power loss.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import soak

SHORT = soak.SoakConfig(
    seconds=25.0,
    servers=2,
    viewers=8,
    rooms=2,
    chaos_interval=(1.5, 3.0),
    down_for=(0.2, 1.0),
    valkey_every=2,
    calm_seconds=3.0,
    quiet=True,
)


@pytest.mark.timeout(240)
async def test_no_coin_lost_or_doubled_when_servers_and_valkey_are_killed(tmp_path: Path) -> None:
    config = dataclasses.replace(SHORT, work_dir=tmp_path)
    report = await soak.run_soak(config)
    told = soak.describe(report)

    assert report["kills"]["server"] >= 2, told
    assert report["kills"]["valkey"] >= 2, told
    assert report["gifts"]["acknowledged_during_run"] > 0, told
    checks = report["checks"]
    assert checks["acked_but_lost"] == 0, told
    assert checks["charged_twice"] == 0, told
    assert checks["debited_not_acked"] == 0, told
    assert checks["conservation_mismatches"] == 0, told
    assert checks["recharge_mismatches"] == 0, told
    assert checks["reconcile_breaches"] == 0, told
    assert report["reconcile_exit"] == 0, told
    assert checks["unresolved"] == 0, told
    # The creators withdrew while processes died: each reserved once, each
    # paid or failed by the end, none lost.
    assert report["withdrawals"]["reserved"] > 0, told
    for check in ("lost", "twice", "unsettled", "not_told", "unresolved"):
        assert checks[f"withdrawals_{check}"] == 0, told
    # And the operator granted viewers promotional coins, each once.
    assert report["grants"]["granted"] > 0, told
    for check in ("lost", "twice", "not_told"):
        assert checks[f"grants_{check}"] == 0, told
    assert report["passed"], told
