"""A run's fixed cost: its wall time besides training steps and evaluation.

    python benchmarks/bench_fixed_cost.py [--task sst2] [--data-dir ../shared/data]

Fixed cost = ``timing.total_s - train_s - eval_s`` of a record: loading the model, tokenizing,
the probe head's features and fit.  Measured two ways, each from a cold cache (a fresh temporary
``LORABAR_CACHE``), MiniLM, 1 training step, ``--max-eval 256``, 1 thread:

- ``process``: each run a fresh ``lorabar finetune`` process (what a user typing commands sees;
  the first run in a process also imports transformers and peft);
- ``in-process``: runs one after the other in one interpreter, as ``lorabar compare`` runs them
  (``--jobs 1`` in its own process, ``--jobs N`` in N reused worker processes).

Methods in order lora, nbar, sam (the first computes what the cache holds, the others read it),
then nbar with ``LORABAR_CACHE=off``.  Prints a markdown table; quote the CPU (printed first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

METHODS = ("lora", "nbar", "sam")

IN_PROCESS = r"""
import json, sys
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.engine import run
out = []
for method, cache in json.loads(sys.argv[1]):
    import os
    os.environ["LORABAR_CACHE"] = cache
    cfg = EncoderConfig(task=sys.argv[2], method=method, steps=1, max_eval=256, threads=1,
                        data_dir=sys.argv[3], seed=13)
    t = run(cfg, progress=False)["timing"]
    out.append(t["total_s"] - t["train_s"] - t["eval_s"])
print(json.dumps(out))
"""


def _process(method: str, cache: str, args, folder: Path) -> float:
    out = folder / f"{method}-{cache.replace('/', '_')}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lorabar",
            "finetune",
            "--task",
            args.task,
            "--method",
            method,
            "--steps",
            "1",
            "--max-eval",
            "256",
            "--threads",
            "1",
            "--data-dir",
            args.data_dir,
            "--out",
            str(out),
            "--quiet",
        ],
        env={**os.environ, "LORABAR_CACHE": cache},
        check=True,
        capture_output=True,
    )
    t = json.loads(out.read_text())["timing"]
    return t["total_s"] - t["train_s"] - t["eval_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument(
        "--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    )
    args = p.parse_args()
    from lorabar.harness.run.runtime import cpu_name

    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; task {args.task}, MiniLM, "
        "1 step, --max-eval 256, 1 thread"
    )
    with tempfile.TemporaryDirectory() as tmp:
        plan = [(m, str(Path(tmp) / "proc")) for m in METHODS] + [("nbar", "off")]
        process = [_process(m, c, args, Path(tmp)) for m, c in plan]
        plan = [(m, str(Path(tmp) / "inproc")) for m in METHODS] + [("nbar", "off")]
        out = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, json.dumps(plan), args.task, args.data_dir],
            check=True,
            capture_output=True,
            text=True,
        )
        inproc = json.loads(out.stdout.strip().splitlines()[-1])
    print("\n| run | process (s) | in-process (s) |\n|---|---:|---:|")
    names = [f"{m} ({'first: computes' if i == 0 else 'cache'})" for i, m in enumerate(METHODS)]
    for name, a, b in zip([*names, "nbar (LORABAR_CACHE=off)"], process, inproc, strict=True):
        print(f"| {name} | {a:.2f} | {b:.2f} |")


if __name__ == "__main__":
    main()
