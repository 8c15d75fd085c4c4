"""Does a method help on your data? lorabar compare on your own train, dev and test files.

Every method is tuned on dev (its lr too), the chosen settings run on every seed, and the
differences to LoRA are paired over seeds with 95% intervals.

    python examples/own_data_compare.py [--train T --dev D --test X] [--model minilm] [--out OUT]
        [--threads 1]

Without files it writes a small synthetic task first; without --model it uses a tiny model, so
the numbers mean nothing -- the point is the command.  With MiniLM on your data, give
--model minilm and drop --steps.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from lorabar.cli import main

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
for split in ("train", "dev", "test"):
    parser.add_argument(f"--{split}", default=None, help=f"your {split} file (jsonl, csv, ...)")
parser.add_argument("--model", default="tiny")
parser.add_argument("--steps", default="20")
parser.add_argument("--out", default=None)
parser.add_argument("--threads", default="1", help="CPU threads per run (0: torch's default)")
parser.add_argument(
    "--verbose",
    action="store_true",
    help="show third-party warnings and weight-loading progress bars",
)
args = parser.parse_args()
if not args.verbose:  # as the console script does: the libraries' chatter off
    from lorabar.cli.args import quiet_libraries

    quiet_libraries()

folder = Path(tempfile.mkdtemp())
files = {s: getattr(args, s) for s in ("train", "dev", "test")}
if not all(files.values()):
    r = random.Random(0)
    for split, n in (("train", 64), ("dev", 32), ("test", 32)):
        rows = [
            {
                "text": " ".join(r.choice("abcdefgh") for _ in range(5))
                + (" fruit" if i % 2 else " metal"),
                "label": "yes" if i % 2 else "no",
            }
            for i in range(n)
        ]
        files[split] = folder / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(row) + "\n" for row in rows))
code = main(
    [
        "compare",
        "--train",
        str(files["train"]),
        "--dev",
        str(files["dev"]),
        "--test",
        str(files["test"]),
        "--text-column",
        "text",
        "--label-column",
        "label",
        "--model",
        args.model,
        "--steps",
        args.steps,
        "--methods",
        "lora,nbar",
        "--seeds",
        "13,21,42",
        "--threads",
        args.threads,
        *(["--verbose"] if args.verbose else []),
        "--out",
        args.out or str(folder / "compare"),
    ]
)
raise SystemExit(code)
