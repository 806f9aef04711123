"""scripts/audit_pypi.py's decisions, on replies shaped like PyPI's project JSON.

No network: the payloads below follow ``https://pypi.org/pypi/<name>/json``
(``info.version``, ``releases``, ``vulnerabilities``), trimmed to the fields
the audit reads.
"""

from __future__ import annotations

import sys
from typing import Any

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import audit_pypi
from audit_pypi import Failure, Installed, Status, judge, summarize


def advisory(ident: str, *aliases: str, fixed: tuple[str, ...] = (), withdrawn: Any = None) -> Any:
    return {
        "aliases": list(aliases),
        "details": "A flaw.",
        "fixed_in": list(fixed),
        "id": ident,
        "link": f"https://osv.dev/vulnerability/{ident}",
        "source": "osv",
        "summary": None,
        "withdrawn": withdrawn,
    }


def project(latest: str, releases: list[str], vulnerabilities: list[Any]) -> dict[str, Any]:
    return {
        "info": {"name": "somepkg", "version": latest},
        "releases": {version: [] for version in releases},
        "urls": [],
        "vulnerabilities": vulnerabilities,
    }


def test_a_vulnerable_latest_version_fails_the_audit() -> None:
    reply = project("2.1.0", ["2.0.0", "2.1.0"], [advisory("PYSEC-2025-1", fixed=("2.1.1",))])
    verdict = judge(Installed("somepkg", "2.1.0"), reply)
    assert verdict.status is Status.VULNERABLE
    report = summarize([verdict])
    assert report.exit_status == 1
    assert "somepkg 2.1.0: PYSEC-2025-1 (fixed in: 2.1.1)" in report.out
    assert report.out[-1].startswith("scripts/audit: 0 audited clean, 1 vulnerable, 0 not checked")


def test_a_withdrawn_advisory_does_not_count() -> None:
    withdrawn = advisory("GHSA-xxxx-yyyy-zzzz", withdrawn="2025-03-01T00:00:00Z")
    verdict = judge(Installed("somepkg", "2.1.0"), project("2.1.0", ["2.1.0"], [withdrawn]))
    assert verdict.status is Status.CLEAN
    report = summarize([verdict])
    assert report.exit_status == 0
    assert report.out == [
        "scripts/audit: 1 audited clean, 0 vulnerable, 0 not checked (PyPI project JSON)"
    ]


def test_one_flaw_listed_under_two_ids_is_reported_once() -> None:
    pysec = advisory("PYSEC-2026-1325", "CVE-2024-23342", "GHSA-wj6h-64fc-37mp")
    ghsa = advisory("GHSA-wj6h-64fc-37mp", "CVE-2024-23342", "PYSEC-2026-1325")
    verdict = judge(Installed("ecdsa", "0.19.2"), project("0.19.2", ["0.19.2"], [pysec, ghsa]))
    assert [a.id for a in verdict.advisories] == ["PYSEC-2026-1325"]
    assert (
        summarize([verdict]).out[0] == "ecdsa 0.19.2: PYSEC-2026-1325 (fixed in: no fixed version)"
    )


def test_an_older_installed_version_is_not_checked_rather_than_clean() -> None:
    # The latest release is clean, but that says nothing about 1.0.0.
    reply = project("2.1.0", ["1.0.0", "2.1.0"], [])
    verdict = judge(Installed("somepkg", "1.0.0"), reply)
    assert verdict.status is Status.NOT_CHECKED
    report = summarize([verdict])
    assert report.exit_status == 0
    assert report.warnings == [
        "scripts/audit: WARNING: somepkg: not checked: installed 1.0.0, latest 2.1.0"
    ]
    assert report.out[-1].startswith("scripts/audit: 0 audited clean, 0 vulnerable, 1 not checked")


def test_an_older_version_is_not_failed_for_the_latest_releases_advisories() -> None:
    reply = project("2.1.0", ["1.0.0", "2.1.0"], [advisory("PYSEC-2025-1")])
    verdict = judge(Installed("somepkg", "1.0.0"), reply)
    assert verdict.status is Status.NOT_CHECKED
    assert summarize([verdict]).exit_status == 0


def test_a_version_missing_from_the_releases_is_said_to_be_so() -> None:
    verdict = judge(Installed("somepkg", "1.5.0+local"), project("2.1.0", ["2.1.0"], []))
    assert verdict.status is Status.NOT_CHECKED
    assert verdict.reason == "installed 1.5.0+local (not a release on PyPI), latest 2.1.0"


def test_two_spellings_of_the_latest_version_are_one_release() -> None:
    reply = project("2.0", ["2.0"], [advisory("PYSEC-2025-2")])
    assert judge(Installed("somepkg", "2.0.0"), reply).status is Status.VULNERABLE
    assert audit_pypi.same_version("1.0rc1", "1.0-RC1")
    assert not audit_pypi.same_version("1.0", "1.0.1")


def test_pypi_unreachable_for_every_package_warns_and_passes() -> None:
    down = Failure("https://pypi.org/pypi/somepkg/json: timed out", reached=False)
    verdicts = [judge(Installed(name, "1.0"), down) for name in ("a", "b")]
    report = summarize(verdicts)
    assert report.exit_status == 0
    assert report.out == []
    assert len(report.warnings) == 1
    assert "could not be reached, nothing was audited" in report.warnings[0]


def test_unreachable_for_some_packages_counts_them_as_not_checked() -> None:
    down = judge(Installed("a", "1.0"), Failure("timed out", reached=False))
    clean = judge(Installed("b", "1.0"), project("1.0", ["1.0"], []))
    report = summarize([down, clean])
    assert report.exit_status == 0
    assert report.out[-1].startswith("scripts/audit: 1 audited clean, 0 vulnerable, 1 not checked")
    assert report.warnings == ["scripts/audit: WARNING: a: not checked: timed out"]


def test_a_package_not_on_pypi_is_not_checked() -> None:
    verdict = judge(Installed("private", "1.0"), Failure("not found on PyPI", reached=True))
    assert verdict.status is Status.NOT_CHECKED


def test_a_reply_without_a_latest_version_is_not_checked() -> None:
    verdict = judge(Installed("somepkg", "1.0"), {"info": {}, "vulnerabilities": []})
    assert verdict.status is Status.NOT_CHECKED


def test_editable_installs_are_recognised_from_direct_url() -> None:
    editable = '{"url": "file:///work/main", "dir_info": {"editable": true}}'
    assert audit_pypi.is_editable(editable)
    assert not audit_pypi.is_editable('{"url": "file:///wheels/x.whl", "archive_info": {}}')
    assert not audit_pypi.is_editable(None)


def test_the_venv_lists_its_packages_without_giftstream() -> None:
    names = {audit_pypi.normalize_name(p.name) for p in audit_pypi.installed_packages()}
    assert "giftstream" not in names
    assert {"starlette", "redis", "msgpack"} <= names
