"""CI's phases, timed on a fresh clone from nothing: what `.ci/run` costs and where it goes.

    python3 benchmarks/bench_ci.py [--keep] [--workers auto] [--demo] [--durations N]

Clones this repository's HEAD beside it (so that ``../shared/data`` is found as CI finds it),
then times, one after the other:

- ``environment``: ``scripts/bootstrap.sh`` into the clone's ``.venv`` with empty uv and pip
  caches (a fresh machine has none; ``LORABAR_INSTALLER=pip`` times the plain-pip path);
- ``collection``: ``pytest --collect-only`` (the number of tests; not part of CI's run);
- ``tests``: ``./scripts/run-tests -q``, CI's test command (``--workers`` sets
  ``LORABAR_TEST_WORKERS``; ``0`` runs them serially);
- ``lint``: ``scripts/lint`` (``ruff check``, the rules of ``pyproject.toml``, and
  ``ruff format --check``);
- ``docs``: ``./scripts/build-docs`` (``mkdocs build --strict``);
- with ``--demo``, ``./scripts/run-demo`` (not part of CI).

Run it on a quiet machine and quote the CPU (printed first: its name, cores and whether it
does bf16 natively).  Each phase also gets the CPU seconds its processes used (user + system, of
the processes it waited for) and the share of the machine's CPU time the hypervisor gave to other
guests meanwhile (``steal``, from ``/proc/stat``): on a shared host the seconds move by a fifth
from one hour to the next, and a phase whose steal is above a few percent ran on a busy machine.
Needs only python3 and git.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    flags = set((re.search(r"^flags\s*:\s*(.*)$", info, re.M) or [None, ""])[1].split())
    bf16 = "native bf16" if flags & {"avx512_bf16", "amx_bf16"} else "no native bf16"
    return f"{name[1] if name else 'unknown CPU'}, {os.cpu_count()} CPUs, {bf16}"


def ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far (Linux ``/proc/stat``; zeros elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, cmd: list[str], cwd: Path, env: dict, rows: list) -> str:
    print(f"[{label}] {' '.join(cmd)}", file=sys.stderr, flush=True)
    start, cpu0, (steal0, total0) = time.perf_counter(), children_cpu(), ticks()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    steal1, total1 = ticks()
    if done.returncode != 0:
        sys.exit(
            f"{label} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    steal = 100.0 * (steal1 - steal0) / max(total1 - total0, 1)
    rows.append((label, seconds, children_cpu() - cpu0, steal))
    return done.stdout + done.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone (default: removed)")
    ap.add_argument("--workers", default="auto", help="LORABAR_TEST_WORKERS (default: auto)")
    ap.add_argument("--demo", action="store_true", help="also time ./scripts/run-demo")
    ap.add_argument(
        "--durations",
        type=int,
        default=0,
        help="also print pytest's N slowest test phases (default: none)",
    )
    args = ap.parse_args()
    print(f"CPU: {cpu()}; load average {os.getloadavg()[0]:.2f} at start")
    work = Path(tempfile.mkdtemp(prefix="bench-ci-"))  # caches and the docs site
    clone = Path(tempfile.mkdtemp(prefix="bench-ci-", dir=ROOT.parent))  # ../shared beside it
    caches = work / "caches"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {
        **os.environ,
        "UV_CACHE_DIR": str(caches / "uv"),
        "PIP_NO_CACHE_DIR": "1",
        "LORABAR_TEST_WORKERS": args.workers,
        "CI": "true",
    }
    if args.durations:
        env["PYTEST_ADDOPTS"] = f"--durations={args.durations}"
    for name in ("LORABAR_VENV", "VIRTUAL_ENV"):
        env.pop(name, None)
    rows: list[tuple[str, float, float, float]] = []
    try:
        timed("environment", ["bash", "-c", "source scripts/bootstrap.sh"], clone, env, rows)
        py = str(clone / ".venv" / "bin" / "python")
        out = timed("collection", [py, "-m", "pytest", "--collect-only", "-q"], clone, env, [])
        collected = re.search(r"(\d+) tests? collected", out)
        out = timed("tests", ["./scripts/run-tests", "-q"], clone, env, rows)
        summary = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", out, re.M)
        slowest = re.search(r"^=+ slowest.*?(?=^\d+ passed|^=+ \d+ passed)", out, re.M | re.S)
        timed("lint", ["./scripts/lint"], clone, env, rows)
        timed("docs", ["./scripts/build-docs", str(work / "site")], clone, env, rows)
        if args.demo:
            timed("demo (not CI)", ["./scripts/run-demo"], clone, env, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(clone, ignore_errors=True)
    if args.durations and slowest:
        print(slowest[0].rstrip())
    print(
        f"collected: {collected[1] if collected else '?'}; tests: {summary[-1] if summary else '?'}"
    )
    print("| phase | seconds | CPU seconds | steal |\n|---|---|---|---|")
    for label, seconds, cpu_s, steal in rows:
        print(f"| {label} | {seconds:.0f} | {cpu_s:.0f} | {steal:.1f} % |")
    ci = [r for r in rows if "not CI" not in r[0]]
    print(f"| total (.ci/run) | {sum(r[1] for r in ci):.0f} | {sum(r[2] for r in ci):.0f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
