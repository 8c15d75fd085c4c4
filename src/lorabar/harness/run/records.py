"""Result files: atomic JSON writes and the provenance every result records."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..._io import write_json_atomic
from ...filekinds import DIGEST, digest_of, digest_ok, with_digest

__all__ = [
    "DIGEST",
    "digest_of",
    "digest_ok",
    "environment",
    "git_revision",
    "with_digest",
    "write_json_atomic",
]

PACKAGES = ("lorabar", "torch", "transformers", "peft", "numpy", "scikit-learn", "scipy")


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The checkout's revision (``-dirty`` when the package's tracked source is changed), read once
    per process: the code a process runs is the code it loaded, whatever is committed later (the
    engine asks at the start of a run)."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        # "-dirty": the package's own source differs from the commit (edited docs or results
        # do not change what a run computes)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", str(here.parent)],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {
        "versions": versions,
        "python": platform.python_version(),
        "git_revision": git_revision(),
        "hardware": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
