"""`make bench`: run the benchmark parts, print a markdown table, keep the numbers.

    python -m bench.run                      every part whose module exists
    python -m bench.run --only verify        one part (repeat --only for more)
    python -m bench.run --skip provisioning

A benchmark, never a test: goals are reported as met or not met, and the exit code is
0 unless the harness itself breaks (a tool missing, a process that does not start).

A part is a module `bench/<name>.py` with `run(args) -> dict`, and optionally
`add_arguments(parser)` for its own options. The dict it returns:

    title     one line
    rows      list of dicts, one table row each (same keys in every row; any keys)
    ratios    {name: number}                              (optional)
    goals     [{"goal": text, "value": number, "met": bool | None}]
    settings  anything that says how it was measured      (optional)
    notes     [text]                                      (optional)

Everything is written to bench/results/<YYYY-MM-DD>.json with the machine's facts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import common

PARTS = ["request_path", "verify", "progress", "provisioning", "first_cert"]
RESULTS = Path(__file__).resolve().parent / "results"


def available_parts() -> list[str]:
    return [name for name in PARTS if importlib.util.find_spec(f"bench.{name}") is not None]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}" if value else "0"
        return str(value)

    numeric = {
        c
        for c in columns
        if all(isinstance(r.get(c), int | float | None) for r in rows)
        and any(isinstance(r.get(c), int | float) for r in rows)
    }
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if c in numeric else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def render(name: str, result: dict[str, Any]) -> str:
    out = [f"### {result.get('title', name)}", "", markdown_table(result.get("rows", []))]
    if result.get("ratios"):
        out += ["", "Ratios: " + ", ".join(f"{k} = {v}" for k, v in result["ratios"].items())]
    for goal in result.get("goals", []):
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[goal.get("met")]
        out.append(f"- Goal {goal['goal']}: **{verdict}** (measured {goal.get('value')})")
    out += [f"- Note: {note}" for note in result.get("notes", [])]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    parser.add_argument("--skip", action="append", choices=PARTS, default=[], help="skip this part")
    workers = common.auth_role_workers()
    parser.add_argument(
        "--workers", type=int, default=workers, help=f"auth workers (the auth role's default: {workers})"
    )
    parser.add_argument("--threads", type=int, default=common.WRK_THREADS, help="wrk threads")
    parser.add_argument("--connections", type=int, default=common.WRK_CONNECTIONS, help="wrk connections")
    parser.add_argument("--duration", type=float, default=common.WRK_DURATION, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=common.WRK_WARMUP, help="seconds of wrk warm-up")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat every measurement, interleaved; report medians"
    )
    parser.add_argument("--output", type=Path, help="results file (default bench/results/<date>.json)")
    modules = {}
    present = available_parts()
    for name in present:
        modules[name] = importlib.import_module(f"bench.{name}")
        if hasattr(modules[name], "add_arguments"):
            modules[name].add_arguments(parser)
    args = parser.parse_args(argv)

    wanted = [p for p in (args.only or PARTS) if p not in args.skip]
    missing = [p for p in wanted if p not in present]
    selected = [p for p in wanted if p in present]
    started = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d"),
        "started": started.isoformat(timespec="seconds"),
        "machine": common.machine_facts(),
        "parts": {},
    }
    if missing and args.only:
        print(f"bench: not available here (no module): {', '.join(missing)}", file=sys.stderr)
    machine = report["machine"]
    print(
        f"Machine: {machine['cpu_model']}, {machine['cpu_cores']} cores, {machine['ram_gib']} GiB, "
        f"Linux {machine['kernel']}; Traefik {machine['traefik']}, wrk {machine['wrk']}, "
        f"Redis {machine['redis']}, nginx {machine.get('nginx')}, Python {machine['python']}; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    broken = False
    for name in selected:
        print(f"\n--> {name} ...", flush=True)
        t0 = time.monotonic()
        load_before = [round(x, 2) for x in os.getloadavg()]
        try:
            result = modules[name].run(args)
        except Exception as error:  # one broken part must not hide the others
            broken = True
            traceback.print_exc()
            result = {"title": name, "error": f"{type(error).__name__}: {error}", "goals": []}
        finally:
            common.stop_all()
        result.setdefault("seconds", round(time.monotonic() - t0, 1))
        # Other work on the machine skews everything: the load averages say how quiet it was.
        result["load_average_before"] = load_before
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        result["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        report["parts"][name] = result
        if "error" not in result:
            print(render(name, result), flush=True)

    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    output = args.output or RESULTS / f"{report['date']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    # One file a day: a later run of some parts replaces those parts and keeps the others.
    if output.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            earlier = json.loads(output.read_text())
            report["parts"] = {**earlier["parts"], **report["parts"]}
    output.write_text(json.dumps(report, indent=2) + "\n")

    print("\n## Summary\n")
    for name, result in report["parts"].items():
        if "error" in result:
            print(f"- {name}: HARNESS ERROR {result['error']}")
        for goal in result.get("goals", []):
            verdict = {True: "met", False: "NOT met", None: "not measured"}[goal.get("met")]
            print(f"- {name}: {goal['goal']}: {verdict} ({goal.get('value')})")
    print(f"\nResults: {output.relative_to(Path.cwd()) if output.is_relative_to(Path.cwd()) else output}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
