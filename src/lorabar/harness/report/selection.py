"""Dev selection: per task and method, the setting with the best mean dev metric, ties broken
by a written rule (`TIE_RULE`), never by the order of the files."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict

from .load import TUNED, finite_metrics
from ..run.result import RunRecord
from .naming import hparams_text


def setting_of(r: dict) -> str:
    ident = dict(r.get("identity") or {"config": r["key"]})
    ident["config"] = {k: v for k, v in ident["config"].items() if k != "seed"}
    ident.pop("data", None)  # a few-shot seed reads its own split files
    return json.dumps(ident, sort_keys=True)


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def select(results: list[RunRecord]) -> dict:
    """``{(task, unit): runs of the dev-chosen setting}`` (`select_with_ties()`; ``unit``: a
    `lorabar.harness.run.result.MethodUnit`, ``chosen[("sst2", MethodUnit("lora"))]``)."""
    return select_with_ties(results)[0]


TIE_RULE = (
    "ties on the mean dev metric are broken by the task's other dev metrics in order "
    "(e.g. MRPC's F1 after its accuracy), then by the smaller learning rate, then by the "
    "smaller method settings (rho, mu0, ...; schedules alphabetically)"
)


def _sortable(value) -> tuple:
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _tie_key(runs: list[RunRecord], common: set) -> tuple:
    """Smaller is preferred: the other dev metrics (negated: higher is better), then the
    hyperparameters themselves (`TIE_RULE`)."""
    use = [x for x in runs if x["config"]["seed"] in common] or runs
    primary = runs[0]["primary_metric"]
    others = [m for m in runs[0]["metrics"]["dev"] if m != primary]
    metrics = tuple(
        -statistics.fmean(x["metrics"]["dev"][m] for x in use)
        for m in others
        if all(isinstance(x["metrics"]["dev"].get(m), int | float) for x in use)
    )
    c = runs[0]["config"]
    return metrics, tuple(_sortable(c.get(k)) for k in TUNED)


def _grouped(results: list[RunRecord]) -> dict:
    """``{(task, unit): {setting: runs}}`` of the finished runs (a failed run, NaN metric, is
    never selected)."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in results:
        if finite_metrics(r):
            groups[(r["config"]["task"], r.unit)][setting_of(r)].append(r)
    return groups


def _common(settings: dict) -> set:
    return set.intersection(*({r["config"]["seed"] for r in runs} for runs in settings.values()))


def selection_seeds(results: list[RunRecord]) -> dict:
    """``{(task, unit): seeds}``: the seeds every setting of a task and method has, on which
    `select_with_ties()` compares them (the tuning seed of a two-stage comparison)."""
    return {key: _common(settings) for key, settings in _grouped(results).items()}


def select_with_ties(results: list[RunRecord]) -> tuple[dict, list[RunRecord]]:
    """``({(task, unit): runs of the setting with the best mean dev metric}, ties)``, ``unit`` a
    `lorabar.harness.run.result.MethodUnit` (a method in its ``--allow-mixed`` context).

    Settings are compared on the seeds they all have (a tuning seed run for every setting,
    then more seeds for the chosen one, compares on the tuning seed), else on their own.  Ties
    (mean dev metrics equal to 1e-12) follow `TIE_RULE`, never the order of the files;
    ``ties`` lists each: ``{"task", "method", "settings", "chosen", "by"}`` (``method``: the
    unit).
    """
    groups = _grouped(results)
    chosen, ties = {}, []
    for key, settings in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        common = _common(settings)

        def dev_score(runs):
            m = runs[0]["primary_metric"]
            use = [x for x in runs if x["config"]["seed"] in common] or runs
            return statistics.fmean(x["metrics"]["dev"][m] for x in use)

        scores = {k: dev_score(runs) for k, runs in settings.items()}
        best = max(scores.values())
        tied = [runs for k, runs in settings.items() if abs(scores[k] - best) <= 1e-12]
        pick = min(tied, key=lambda runs: _tie_key(runs, common))
        chosen[key] = pick
        if len(tied) > 1:
            by = (
                "other dev metrics"
                if len({_tie_key(r, common)[0] for r in tied}) > 1
                else "smaller hyperparameters"
            )
            ties.append(
                {
                    "task": key[0],
                    "method": key[1],
                    "settings": sorted(hparams_text(r[0]) for r in tied),
                    "chosen": hparams_text(pick[0]),
                    "by": by,
                }
            )
    return chosen, ties
