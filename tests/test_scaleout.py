"""The scale-out benchmark, run at its smallest so that it cannot rot.

``scripts/bench_scaleout.py --quick`` starts its own Valkey, its own
cluster and real ``giftstream serve`` processes, and runs the real load
generator against each configuration. Only "it finished, and every row is
there and adds up" is checked: the figures themselves belong in
docs/benchmarks.md, not in a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "bench_scaleout.py"
EXPECTED = [("node", 1), ("node", 2), ("node", 4), ("cluster", 1), ("cluster", 2)]


def test_the_quick_run_measures_every_configuration(tmp_path: Path) -> None:
    json_path = tmp_path / "scaleout.json"
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(json_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    document = json.loads(json_path.read_text())
    rows = document["rows"]
    assert [(row["store"], row["processes"]) for row in rows] == EXPECTED
    for row in rows:
        name = f"{row['store']} x{row['processes']}"
        assert row["acked"] > 0, name
        assert row["acked_per_second"] > 0, name
        assert row["events_per_second"] > 0, name
        assert row["acked_ratio"] > 0, name
        assert row["events_ratio"] > 0, name
        # Events crossed processes and shards in order: no watcher skipped a seq.
        assert row["seq_gaps"] == 0, name
    assert (rows[0]["acked_ratio"], rows[0]["events_ratio"]) == (1.0, 1.0)
    assert document["machine"]["cpus"] >= 1
    # The table a reader copies into docs/benchmarks.md: a line per configuration.
    table = [line for line in finished.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(EXPECTED)
    assert sum(line.startswith("| 1 node |") for line in table) == 3
    assert sum(line.startswith("| cluster, 3 primaries |") for line in table) == 2
