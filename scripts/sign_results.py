"""Sign result files written before run digests: add the record's ``digest``
(:func:`lorabar.harness.run.records.with_digest`) so that ``lorabar report`` and ``lorabar grid``
trust it; a record edited by hand afterwards no longer matches and is left out as altered.

    python scripts/sign_results.py results/faithful results/glue ...   [--check]

Only records without a digest are signed (their content is kept as it is, the digest appended);
a record whose digest does not match is reported and left alone.  Writes are atomic; ``--check``
writes nothing and exits 1 if a record would be signed or is altered.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lorabar.harness.run.records import DIGEST, digest_ok, with_digest, write_json_atomic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--check", action="store_true", help="write nothing")
    args = parser.parse_args()
    signed = altered = kept = 0
    for folder in args.folders:
        for path in sorted(Path(folder).rglob("*.json")):
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or "metrics" not in record or "config" not in record:
                continue
            if DIGEST in record:
                if digest_ok(record):
                    kept += 1
                else:
                    altered += 1
                    print(f"altered (left alone): {path}", file=sys.stderr)
                continue
            signed += 1
            if not args.check:
                write_json_atomic(path, with_digest(record))
    verb = "to sign" if args.check else "signed"
    print(f"{signed} {verb}, {kept} already signed, {altered} altered")
    return 1 if altered or (args.check and signed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
