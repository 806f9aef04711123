"""Known vulnerabilities from PyPI's per-project JSON: scripts/audit's fallback.

pip-audit asks PyPI for ``/pypi/<name>/<version>/json`` (or asks OSV). Where
neither answers, ``/pypi/<name>/json`` may still: it names the latest release
(``info.version``) and lists the advisories known for that release
(``vulnerabilities``). So a package installed at its latest version can be
audited for real; any other version cannot be, and is reported as not
checked rather than passed as clean.

    .venv/bin/python scripts/audit_pypi.py

Exit status: 1 when an installed package has a known, non-withdrawn
advisory; 0 otherwise, including when PyPI could not be reached at all (a
network outage must not fail CI; the warning says that nothing was audited).
Standard library only, so that it runs from any venv.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from importlib import metadata

PROJECT_URL = "https://pypi.org/pypi/{name}/json"
PREFIX = "scripts/audit:"


@dataclass(frozen=True)
class Installed:
    name: str
    version: str


@dataclass(frozen=True)
class Advisory:
    id: str
    fixed_in: tuple[str, ...]


@dataclass(frozen=True)
class Failure:
    """No usable project JSON. ``reached`` is False when PyPI did not answer."""

    reason: str
    reached: bool


class Status(Enum):
    CLEAN = "clean"
    VULNERABLE = "vulnerable"
    NOT_CHECKED = "not checked"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Verdict:
    package: Installed
    status: Status
    advisories: tuple[Advisory, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Report:
    out: list[str]
    warnings: list[str]
    exit_status: int


# --- pure decisions ----------------------------------------------------------


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def version_key(version: str) -> tuple[tuple[int, ...], str]:
    """Enough of PEP 440 to tell whether two spellings name the same release.

    "2.0" and "2.0.0" are one release, and so are "1.0rc1" and "1.0-RC1".
    """
    match = re.fullmatch(r"v?(\d+(?:\.\d+)*)(.*)", version.strip().lower())
    if match is None:
        return ((), version.strip().lower())
    release = [int(part) for part in match[1].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    return (tuple(release), re.sub(r"[-_.]", "", match[2]))


def same_version(a: str, b: str) -> bool:
    return version_key(a) == version_key(b)


def open_advisories(entries: object) -> tuple[Advisory, ...]:
    """The advisories that still stand, one per vulnerability.

    A withdrawn advisory was retracted by its source and does not count. The
    same flaw is often listed twice (a PYSEC id and a GHSA id, each naming the
    other among its aliases): it is reported once, under its first id.
    """
    if not isinstance(entries, list):
        return ()
    found: list[Advisory] = []
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("withdrawn"):
            continue
        ident = str(entry.get("id", "?"))
        aliases = {str(alias) for alias in entry.get("aliases") or []}
        if ident in seen:
            continue
        seen.add(ident)
        seen.update(aliases)
        fixed = tuple(str(version) for version in entry.get("fixed_in") or [])
        found.append(Advisory(ident, fixed))
    return tuple(found)


def judge(package: Installed, project: Mapping[str, object] | Failure) -> Verdict:
    """What the project JSON says about the installed version, and no more."""
    if isinstance(project, Failure):
        status = Status.NOT_CHECKED if project.reached else Status.UNREACHABLE
        return Verdict(package, status, reason=project.reason)
    info = project.get("info")
    latest = info.get("version") if isinstance(info, dict) else None
    if not isinstance(latest, str):
        return Verdict(package, Status.NOT_CHECKED, reason="no latest version in PyPI's reply")
    if same_version(package.version, latest):
        advisories = open_advisories(project.get("vulnerabilities"))
        status = Status.VULNERABLE if advisories else Status.CLEAN
        return Verdict(package, status, advisories)
    # PyPI lists advisories for the latest release only. Whether or not the
    # installed version is among the releases, nothing is known about it:
    # an advisory fixed before the latest release is simply absent here.
    releases = project.get("releases")
    published = isinstance(releases, dict) and any(
        same_version(package.version, release) for release in releases
    )
    where = "" if published else " (not a release on PyPI)"
    reason = f"installed {package.version}{where}, latest {latest}"
    return Verdict(package, Status.NOT_CHECKED, reason=reason)


def summarize(verdicts: Sequence[Verdict]) -> Report:
    out: list[str] = []
    warnings: list[str] = []
    unreachable = [v for v in verdicts if v.status is Status.UNREACHABLE]
    if verdicts and len(unreachable) == len(verdicts):
        warnings.append(
            f"{PREFIX} WARNING: PyPI's project JSON could not be reached, nothing was "
            f"audited: {unreachable[0].reason}"
        )
        return Report(out, warnings, 0)
    counts = dict.fromkeys(Status, 0)
    for verdict in sorted(verdicts, key=lambda v: normalize_name(v.package.name)):
        counts[verdict.status] += 1
        name, version = verdict.package.name, verdict.package.version
        for advisory in verdict.advisories:
            fixed = ", ".join(advisory.fixed_in) or "no fixed version"
            out.append(f"{name} {version}: {advisory.id} (fixed in: {fixed})")
        if verdict.status in (Status.NOT_CHECKED, Status.UNREACHABLE):
            warnings.append(f"{PREFIX} WARNING: {name}: not checked: {verdict.reason}")
    not_checked = counts[Status.NOT_CHECKED] + counts[Status.UNREACHABLE]
    out.append(
        f"{PREFIX} {counts[Status.CLEAN]} audited clean, {counts[Status.VULNERABLE]} "
        f"vulnerable, {not_checked} not checked (PyPI project JSON)"
    )
    return Report(out, warnings, 1 if counts[Status.VULNERABLE] else 0)


def is_editable(direct_url: str | None) -> bool:
    """Whether pip's direct_url.json marks an editable install (our own project)."""
    if not direct_url:
        return False
    try:
        record = json.loads(direct_url)
    except ValueError:
        return False
    dir_info = record.get("dir_info") if isinstance(record, dict) else None
    return isinstance(dir_info, dict) and dir_info.get("editable") is True


# --- I/O ---------------------------------------------------------------------


def installed_packages() -> list[Installed]:
    """The distributions this interpreter sees, editable ones left out.

    The first of two same-named distributions wins, as it would on import. A
    name is left out when any of its copies is editable: run from the repo
    root, the project's own egg-info (no direct_url.json) shadows its
    editable install.
    """
    found: dict[str, Installed] = {}
    editable: set[str] = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = normalize_name(name)
        if is_editable(dist.read_text("direct_url.json")):
            editable.add(key)
        found.setdefault(key, Installed(name, dist.version))
    return [package for key, package in found.items() if key not in editable]


def fetch_project(name: str, timeout: float, attempts: int) -> Mapping[str, object] | Failure:
    url = PROJECT_URL.format(name=normalize_name(name))
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    reason = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.5 * 2**attempt)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.load(response)
            if isinstance(body, dict):
                return body
            return Failure("PyPI's reply is not a JSON object", reached=True)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return Failure("not found on PyPI", reached=True)
            reason = f"HTTP {error.code} from {url}"
            if error.code < 500 and error.code != 429:
                return Failure(reason, reached=True)
        except ValueError:
            return Failure("PyPI's reply is not JSON", reached=True)
        except (urllib.error.URLError, OSError) as error:
            # Timeouts, refused connections, DNS: worth another try.
            reason = f"{url}: {error}"
    return Failure(reason, reached=False)


def audit(packages: Iterable[Installed], timeout: float, attempts: int, workers: int) -> Report:
    packages = list(packages)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        replies = pool.map(lambda p: fetch_project(p.name, timeout, attempts), packages)
        verdicts = [judge(p, reply) for p, reply in zip(packages, replies, strict=True)]
    return summarize(verdicts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    parser.add_argument("--attempts", type=int, default=3, help="tries per package")
    parser.add_argument("--workers", type=int, default=8, help="requests in parallel")
    args = parser.parse_args(argv)
    report = audit(installed_packages(), args.timeout, args.attempts, args.workers)
    for line in report.warnings:
        print(line, file=sys.stderr)
    for line in report.out:
        print(line)
    return report.exit_status


if __name__ == "__main__":
    sys.exit(main())
