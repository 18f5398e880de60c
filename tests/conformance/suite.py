"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in this
directory's package-lock.json; `make conformance-tools` installs it): run its server
scenarios against a URL, read its results, and print two runs side by side."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
# Debian's Node 20 lacks fs.globSync, which the suite imports (fs-globsync.mjs).
NODE = ["node", "--import", str(HERE / "fs-globsync.mjs")]
RESULT_DIR_RE = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


@dataclass(frozen=True)
class Outcome:
    passed: int
    failed: int
    warnings: int

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def __str__(self) -> str:
        mark = "pass" if self.ok else "FAIL"
        return f"{mark} {self.passed}/{self.passed + self.failed}" + (
            f" ({self.warnings} warn)" if self.warnings else ""
        )


def run(url: str, suite: str = "active", timeout: float = 600) -> dict[str, Outcome]:
    """Every server scenario of `suite` against `url`: scenario -> outcome."""
    if not CLI.is_file():
        raise RuntimeError(f"{CLI} is missing: run `make conformance-tools` (npm ci in {HERE})")
    with tempfile.TemporaryDirectory(prefix="conformance-") as out:
        subprocess.run(
            [*NODE, str(CLI), "server", "--url", url, "--suite", suite, "-o", out],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return read_results(Path(out))


def read_results(directory: Path) -> dict[str, Outcome]:
    results = {}
    for checks_file in sorted(directory.glob("*/checks.json")):
        match = RESULT_DIR_RE.match(checks_file.parent.name)
        if not match:
            continue
        checks = json.loads(checks_file.read_text())
        statuses = [check.get("status") for check in checks]
        results[match.group("scenario")] = Outcome(
            passed=statuses.count("SUCCESS"),
            failed=statuses.count("FAILURE"),
            warnings=statuses.count("WARNING"),
        )
    return results


def side_by_side(left: dict[str, Outcome], right: dict[str, Outcome], titles: tuple[str, str]) -> str:
    """A markdown table: one row per scenario, the two runs' outcomes, and totals."""
    rows = [f"| scenario | {titles[0]} | {titles[1]} |", "| --- | --- | --- |"]
    for scenario in sorted(set(left) | set(right)):
        cells = [str(run.get(scenario, "missing")) for run in (left, right)]
        rows.append(f"| {scenario} | {cells[0]} | {cells[1]} |")
    totals = [f"{sum(o.ok for o in run.values())}/{len(run)} scenarios pass" for run in (left, right)]
    rows.append(f"| **total** | {totals[0]} | {totals[1]} |")
    return "\n".join(rows)
