"""What ``lorabar compare`` compares (`CompareConfig`), validated on construction."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..report.verdicts import DEFAULT_MARGIN
from ..run.config import CONFIGS
from ..run.registry import BASELINE, METHODS, PAPER_METHODS

__all__ = ["HINT", "CompareConfig", "grid_methods"]

HINT = "give each comparison its own --out"


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """What to compare: ``base`` (config settings every run shares: the task or your own files,
    steps, model ...), ``methods``, ``seeds`` (the first one tunes), an optional TOML ``grid`` for
    stage 1, the ``baseline`` of the paired differences and the output folder ``out``;
    ``reuse``: folders whose finished runs of the same identity count as this comparison's
    (referenced in ``OUT/manifest.json``, not copied); ``margin``: the verdicts' equivalence
    margin in the metric's points (`verdicts`); ``widen_edges``:
    rounds of `widen` after tuning (0: none)."""

    out: str
    methods: tuple[str, ...] = PAPER_METHODS
    seeds: tuple[int, ...] = (13, 21, 42, 87, 100)
    base: dict = dataclasses.field(default_factory=dict)
    grid: str | None = None
    baseline: str = BASELINE
    kind: str = "encoder"
    report: str | None = None
    tasks: tuple[str, ...] | None = None
    protocol: str = "own-lr"
    settings_from: str | None = None
    reuse: tuple[str, ...] = ()
    margin: float = DEFAULT_MARGIN
    widen_edges: int = 0
    save_adapters: str | None = None  # `keep`: each method's adapter at its chosen setting
    every_seed: bool = False

    def __post_init__(self) -> None:
        from ... import _validate as _v
        from ..plan.protocol import PROTOCOLS
        from ..report.paired import check_pairing
        from ..report.widen import check_widen

        check_pairing(self.baseline, self.margin)
        check_widen(self.widen_edges, self.protocol)

        if self.protocol not in PROTOCOLS:
            raise _v.choice("protocol", self.protocol, list(PROTOCOLS), "--protocol")
        if self.kind not in CONFIGS:
            raise _v.choice("kind", self.kind, sorted(CONFIGS))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise _v.choice("methods", ",".join(unknown) or "''", list(METHODS), "--methods")
        if self.baseline not in self.methods:
            raise ValueError(
                f"Invalid --baseline: {self.baseline!r} is not among --methods {list(self.methods)}"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"Invalid --seeds: {list(self.seeds)} (expected distinct seeds)")
        for s in self.seeds:
            _v.integer("seeds", s, 0, flag="--seeds")
        if (self.settings_from is None) != (self.protocol != "settings-from"):
            raise ValueError(
                "Invalid --settings-from: the protocol 'settings-from' and "
                "--settings-from DIR go together"
            )
        if self.settings_from is not None and not Path(self.settings_from).is_dir():
            raise ValueError(
                f"Invalid --settings-from: {self.settings_from!r} is not a folder of finished runs"
            )
        for folder in self.reuse:
            if not (Path(folder) / "runs").is_dir():
                raise ValueError(f"Invalid --reuse: {folder!r} is not a results folder (no runs/)")
        if self.every_seed and not self.save_adapters:
            raise ValueError(
                "Invalid --every-seed: it keeps an adapter per seed with "
                "--save-adapters DIR; give that too"
            )
        if self.tasks and not self.grid:
            raise ValueError(
                "Invalid --tasks: it picks tasks of a --grid TOML; without --grid "
                "give the one task with --task (or your files with --train/--dev/"
                "--test)"
            )


def grid_methods(path: str) -> tuple[str, ...]:
    """The methods a tuning TOML's variants name, in the registry's order."""
    from ..plan.grid import load_grid

    grid = load_grid(path)
    named: set[str] = set()
    for v in grid.get("variant", [{}]):
        m = v.get("method", grid.get("base", {}).get("method", "lora"))
        named.update(m if isinstance(m, list) else [m])
    return tuple(m for m in METHODS if m in named)
