"""Re-key result files written before run identities: add the record's ``identity`` and rename
the file to the run id it gives (``lorabar.harness.run.identity``).

    python scripts/rekey_results.py results/faithful results/glue ... --data-dir ../shared/data

The identity is built from what the record says it ran with -- its config, the resolved device,
precision and torch threads in its ``runtime`` -- and the content hashes of the data and model
files as they are now (give the data folder the runs read).  A record whose identity is present
and whose name matches it is left alone; two files that map to one run are kept once only if
their metrics are equal (else the script stops, naming both).  Writes are atomic; nothing is
written on a dry run (``--check``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lorabar.harness.run.config import CONFIGS, config_from
from lorabar.harness.run.identity import run_id, run_identity
from lorabar.harness.report import result_files
from lorabar.harness.run.records import write_json_atomic


def rekey(path: Path, data_dir: str) -> tuple[dict, str]:
    record = json.loads(path.read_text())
    kind = record.get("kind", "encoder")
    names = set(CONFIGS[kind].field_names())
    cfg = config_from(
        {**{k: v for k, v in record["config"].items() if k in names}, "data_dir": data_dir}, kind
    )
    rt = record["runtime"]
    device = rt["device"].split(":")[0]
    identity = run_identity(
        cfg, device=device, precision=rt["precision"], threads=rt["torch_threads"]
    )
    return {**record, "key": cfg.key(), "identity": identity}, run_id(identity)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--check", action="store_true", help="print what would change, write nothing")
    args = ap.parse_args()
    for folder in args.folders:
        targets: dict[Path, tuple[Path, dict]] = {}
        for path in result_files(folder):
            record, name = rekey(path, args.data_dir)
            target = path.with_name(f"{name}.json")
            if target in targets:
                other, kept = targets[target]
                if kept["metrics"] != record["metrics"]:
                    print(
                        f"{other} and {path} are one run with different metrics; resolve by hand",
                        file=sys.stderr,
                    )
                    return 2
                print(f"{path}: the same run as {other}; dropped")
                if not args.check:
                    path.unlink()
                continue
            targets[target] = (path, record)
        renamed = 0
        for target, (path, record) in targets.items():
            old = json.loads(path.read_text())
            if old == record and path == target:
                continue
            renamed += path != target
            if not args.check:
                write_json_atomic(target, record)
                if path != target:
                    path.unlink()
        print(f"{folder}: {len(targets)} runs, {renamed} renamed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
