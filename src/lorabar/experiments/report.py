"""Tables and figures from a folder of result files (``lorabar report DIR``).

* Table 1 analog: tasks x methods, test metric mean ± std over seeds, for each method's
  hyperparameters chosen on **dev** (mean dev metric over seeds); with the final mean |B| per
  method, the majority-class reference and full finetuning where present (markdown and CSV).
* Runtime table: median per-iteration time per method, normalized to LoRA on the same task
  (paper Tables 2/7), from the same runs.
* Fig. 3 analog: |B_l| over steps for the first, middle and last query layers, LoRA vs SAM vs
  nBAR (PNG per task).

What is read and compared (:func:`load`, :func:`check_comparable`): exactly the result files of
the folder (``DIR/*.json`` and, for a grid's output folder, ``DIR/runs/*.json``; subfolders
only with ``recursive``).  Runs are grouped by their identity minus the seed (and the seed's data
files); runs whose identities differ in anything but the tuned hyperparameters (``lr`` and the
method's own) -- model, steps, precision, threads, batch size, data content ... -- are refused
(one line naming two such files) unless ``allow_mixed``, which reports each combination as its
own row with model, steps and precision columns.  A run with a non-finite dev or test metric is
never selected or averaged: it is listed as a failed run.  The output folder is built beside
and then swapped in whole, so no file of an earlier report survives and a failure leaves the
earlier report intact.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from ..guard import Output, publish_folder
from .identity import RUN_NAME, own_task_name, run_id
from .registry import METHODS
from .results import DIGEST, digest_ok
from .stats import t_interval

METHOD_ORDER = tuple(METHODS)  # the registry's order
LABELS = {name: m.label for name, m in METHODS.items()}
# The paper's Table 1 order first, then the other tasks.
TASK_ORDER = ("sst2", "sst5", "snli", "mnli", "rte", "trec", "mrpc", "cola", "qnli", "qqp", "stsb",
              "cb", "copa", "webnlg")


def task_order(task: str) -> tuple[int, str]:
    """The paper's Table 1 order first, then the other tasks alphabetically."""
    return _task_key(task)


def _task_key(task: str) -> tuple[int, str]:
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


REQUIRED = ("config", "key", "identity", "metrics", "primary_metric")
# what dev selection chooses among; every other identity field must agree across a report
TUNED = ("lr", "bar") + tuple(sorted({h for m in METHODS.values() for h in m.hparams})) \
    + ("weight_decay",)  # a recipe may set it per method (App. D.4: 0 for BAR on CoLA, RTE)
# shown as columns when --allow-mixed reports runs of different contexts side by side
MIXED_COLUMNS = ("model", "steps", "precision")


class BadResultError(ValueError):
    """A result file that does not parse or lacks what a report needs (names the file)."""


class AlteredResultError(BadResultError):
    """A result file whose content does not match the digest written with it (edited by hand,
    or written by a lorabar before digests: sign those once with experiments/sign_results.py)."""


def _check_result(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BadResultError(f"{path}: not a readable JSON result ({err}); a truncated write? "
                             "Delete it and rerun its grid, or pass --skip-bad") from None
    if not isinstance(data, dict):
        raise BadResultError(f"{path}: not a result (a JSON {type(data).__name__}, expected an "
                             "object); pass --skip-bad to leave it out")
    if "identity" not in data and isinstance(data.get("config"), dict):
        raise BadResultError(f"{path}: no recorded identity (written by a lorabar from before "
                             "run identities); re-key it with python experiments/rekey_results.py "
                             "or rerun its grid, or pass --skip-bad")
    missing = [k for k in REQUIRED if k not in data]
    config = data.get("config")
    if isinstance(config, dict):
        missing += [f"config.{k}" for k in ("task", "method", "seed") if k not in config]
    metric = data.get("primary_metric")
    metrics = data.get("metrics")
    if isinstance(metrics, dict) and metric is not None:
        missing += [f"metrics.{s}.{metric}" for s in ("dev", "test")
                    if not isinstance(metrics.get(s), dict) or metric not in metrics[s]]
    if missing:
        raise BadResultError(f"{path}: not a complete result: missing {', '.join(missing)}; "
                             "pass --skip-bad to leave it out")
    if not digest_ok(data):
        what = "does not match its digest" if DIGEST in data else "carries no digest"
        raise AlteredResultError(f"{path}: altered: its content {what} (edited by hand? rerun "
                                 "the run); left out")
    stem = path.name[: -len(".json")]
    if RUN_NAME.match(stem):
        try:
            expected = run_id(data["identity"])
        except (KeyError, TypeError):
            expected = None
        if expected != stem:
            c = data["config"]
            raise BadResultError(f"{path}: its content is not the run its name says (it holds "
                                 f"{c['task']}/{c['method']}/seed {c['seed']}, whose file name "
                                 f"is {expected}.json); pass --skip-bad to leave it out")
    return data


def _primary_from_task(data: dict) -> None:
    """A staged encoder task's primary metric is the task's (App. D.4's rule, in
    :data:`lorabar.experiments.data.TASKS`), whatever an older lorabar recorded (MRPC by F1)."""
    from .data import TASKS

    task = TASKS.get(data["config"]["task"])
    if data.get("kind", "encoder") == "encoder" and task is not None:
        dev, test = data["metrics"]["dev"], data["metrics"]["test"]
        if task.primary_metric in dev and task.primary_metric in test:
            data["primary_metric"] = task.primary_metric


def result_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """The result files of ``folder``: ``folder/*.json`` and, for a grid's output folder,
    ``folder/runs/*.json`` (every ``*.json`` below it with ``recursive``); error files of failed
    grid runs (``*.error.json``) and hidden files (a report's manifest) excluded."""
    folder = Path(folder)
    if recursive:
        paths = folder.rglob("*.json")
    else:
        paths = list(folder.glob("*.json")) + list((folder / "runs").glob("*.json"))
    return sorted(p for p in paths if p.is_file() and not p.name.startswith(".")
                  and not p.name.endswith(".error.json"))


def load(folder: str | Path, *, skip_bad: bool = False,
         recursive: bool = False) -> tuple[list[dict], list[str]]:
    """Every result of ``folder`` (:func:`result_files`) and the messages of the files left out
    (``skip_bad``); without ``skip_bad`` a bad file raises :class:`BadResultError`.  Two files
    holding the same run (the same identity) raise ``ValueError`` naming both."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Result folder {str(folder)!r} does not exist")
    out, skipped, seen = [], [], {}
    for path in result_files(folder, recursive=recursive):
        try:
            data = _check_result(path)
        except BadResultError as err:
            if not skip_bad and not isinstance(err, AlteredResultError):
                raise
            skipped.append(str(err).replace("; pass --skip-bad to leave it out", "")
                           .replace(", or pass --skip-bad", ""))
            continue
        ident = json.dumps(data["identity"], sort_keys=True)
        if ident in seen:
            raise ValueError(f"{seen[ident]} and {path} hold the same run (the same identity); "
                             "keep one of them")
        seen[ident] = path
        data["_path"] = str(path)
        _primary_from_task(data)
        if data["config"]["task"] == "custom":  # your own data: a task named from its content
            data["_config_task"] = "custom"
            data["config"] = {**data["config"],
                              "task": own_task_name(data["config"], data["identity"]["data"])}
        out.append(data)
    if not out:
        where = "under" if recursive else "in"
        raise ValueError(f"No result files (JSON with 'config' and 'metrics') {where} "
                         f"{str(folder)!r}" + ("" if recursive else " or its runs/ folder "
                                               "(--recursive reads every subfolder)"))
    return out, skipped


def _finite_metrics(r: dict) -> bool:
    m = r["primary_metric"]
    values = [r["metrics"][s].get(m) for s in ("dev", "test")]
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def split_failed(results: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(runs with finite dev and test metrics, runs without: failed)``."""
    ok = [r for r in results if _finite_metrics(r)]
    return ok, [r for r in results if not _finite_metrics(r)]


def _context(r: dict) -> dict:
    """The run's identity minus what a report may vary: the seed (and so its data files), the
    task and method, and the tuned hyperparameters."""
    ident = r["identity"]
    config = {k: v for k, v in ident["config"].items()
              if k not in ("seed", "task", "method") + TUNED}
    return {**config, "model": ident["model"], "device": ident["device"],
            "precision": ident["precision"], "threads": ident.get("threads")}


def _differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() & b.keys() if a[k] != b[k])


def _show(key: str, value) -> str:
    if key == "model" and isinstance(value, dict):
        files = value.get("files") or {}
        digest = hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]
        return f"{value.get('name')}" + (f"@{digest}" if files else "")
    return str(value)


MIXED_HINT = "report them from separate folders, or pass --allow-mixed to show them side by side " \
    "(never paired)"


def check_comparable(results: list[dict], *, allow_mixed: bool = False,
                     hint: str = MIXED_HINT) -> list[str]:
    """Raise ``ValueError`` naming two files if the runs are not comparable (see the module
    docstring); with ``allow_mixed``, tag each run with its context instead (``r["_unit"]``)
    and return the context fields that differ."""
    files: dict[tuple[str, str], tuple[str, str]] = {}
    for r in results:  # the same data file (role) of a task must have the same content
        for rel, digest in r["identity"]["data"].items():
            seen = files.setdefault((r["config"]["task"], rel), (digest, r["_path"]))
            if seen[0] != digest:
                raise ValueError(f"{seen[1]} and {r['_path']} read different contents of the data "
                                 f"file {rel!r}; runs on different data are not compared "
                                 "(report them from separate folders)")
    groups: dict[str, tuple[dict, str]] = {}
    for r in results:
        ctx = _context(r)
        groups.setdefault(json.dumps(ctx, sort_keys=True, default=str), (ctx, r["_path"]))
    contexts = list(groups.values())
    differing: set[str] = set()
    for i, (a, pa) in enumerate(contexts):
        for b, pb in contexts[i + 1:]:
            diff = _differing(a, b)
            if diff and not allow_mixed:
                shown = ", ".join(f"{k} {_show(k, a[k])} vs {_show(k, b[k])}" for k in diff[:4])
                raise ValueError(f"{pa} and {pb} are not comparable runs ({shown}); {hint}")
            differing.update(diff)
    if not differing:
        return []
    columns = list(MIXED_COLUMNS) + sorted(differing - set(MIXED_COLUMNS))
    for r in results:
        ctx = _context(r)
        r["_context"] = [_show(k, ctx.get(k, "–")) for k in columns]
        r["_context_columns"] = columns
        r["_unit"] = f"{r['config']['method']} [{', '.join(r['_context'])}]"
    return columns


def _unit(r: dict) -> str:
    return r.get("_unit", r["config"]["method"])


def _method(unit: str) -> str:
    return unit.split(" [", 1)[0]


def _label(unit: str) -> str:
    m = _method(unit)
    return LABELS.get(m, m) + unit[len(m):]


def load_results(folder: str | Path, *, skip_bad: bool = False, recursive: bool = False,
                 allow_mixed: bool = False, hint: str = MIXED_HINT) -> list[dict]:
    """The comparable, finished results of ``folder`` (:func:`load`, :func:`check_comparable`;
    runs with a non-finite metric left out)."""
    results = load(folder, skip_bad=skip_bad, recursive=recursive)[0]
    check_comparable(results, allow_mixed=allow_mixed, hint=hint)
    return split_failed(results)[0]


def _setting(r: dict) -> str:
    ident = dict(r.get("identity") or {"config": r["key"]})
    ident["config"] = {k: v for k, v in ident["config"].items() if k != "seed"}
    ident.pop("data", None)  # a few-shot seed reads its own split files
    return json.dumps(ident, sort_keys=True)


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def select(results: list[dict]) -> dict:
    """``{(task, method): runs of the dev-chosen setting}`` (:func:`select_with_ties`)."""
    return select_with_ties(results)[0]


TIE_RULE = ("ties on the mean dev metric are broken by the task's other dev metrics in order "
            "(e.g. MRPC's F1 after its accuracy), then by the smaller learning rate, then by the "
            "smaller method settings (rho, mu0, ...; schedules alphabetically)")


def _sortable(value) -> tuple:
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _tie_key(runs: list[dict], common: set) -> tuple:
    """Smaller is preferred: the other dev metrics (negated: higher is better), then the
    hyperparameters themselves (:data:`TIE_RULE`)."""
    use = [x for x in runs if x["config"]["seed"] in common] or runs
    primary = runs[0]["primary_metric"]
    others = [m for m in runs[0]["metrics"]["dev"] if m != primary]
    metrics = tuple(-statistics.fmean(x["metrics"]["dev"][m] for x in use) for m in others
                    if all(isinstance(x["metrics"]["dev"].get(m), int | float) for x in use))
    c = runs[0]["config"]
    return metrics, tuple(_sortable(c.get(k)) for k in TUNED)


def select_with_ties(results: list[dict]) -> tuple[dict, list[dict]]:
    """``({(task, method): runs of the setting with the best mean dev metric}, ties)``.

    Settings are compared on the seeds they all have (a tuning seed run for every setting,
    then more seeds for the chosen one, compares on the tuning seed), else on their own.  Ties
    (mean dev metrics equal to 1e-12) follow :data:`TIE_RULE`, never the order of the files;
    ``ties`` lists each: ``{"task", "method", "settings", "chosen", "by"}``.
    """
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in results:
        if not _finite_metrics(r):
            continue  # a failed run (NaN metric) is never selected
        groups[(r["config"]["task"], _unit(r))][_setting(r)].append(r)
    chosen, ties = {}, []
    for key, settings in sorted(groups.items()):
        common = set.intersection(*({r["config"]["seed"] for r in runs}
                                    for runs in settings.values()))

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
            by = "other dev metrics" if len({_tie_key(r, common)[0] for r in tied}) > 1 \
                else "smaller hyperparameters"
            ties.append({"task": key[0], "method": key[1], "settings": sorted(_hp(r[0])
                                                                           for r in tied),
                         "chosen": _hp(pick[0]), "by": by})
    return chosen, ties


def average_over_tasks(per_seed: dict) -> tuple[int, int, float, float, float] | None:
    """``(n_tasks, n_seeds, mean, low, high)`` of the paired differences averaged over tasks:
    per seed the mean difference over its tasks (``per_seed[seed]`` lists them), then the
    t-interval over seeds; ``None`` when the seeds do not all have the same number of tasks."""
    if not per_seed or len({len(v) for v in per_seed.values()}) != 1:
        return None
    avg = [statistics.fmean(v) for v in per_seed.values()]
    return (len(next(iter(per_seed.values()))), len(avg), *t_interval(avg))


def paired(results: list[dict], baseline: str = "lora") -> list[list[str]]:
    """Per task and method: the mean paired test difference to ``baseline`` (both at their
    dev-chosen settings) over the seeds both have -- the same seed is the same split and
    initialization -- with a 95% t-interval; then the average over tasks (per seed, the mean
    difference over the tasks that have it, then the t-interval over seeds).  Metrics x100
    (BLEU as is)."""
    chosen = select(results)
    columns = _context_columns(results)
    rows = [["task", "method", *columns, "n", "mean_diff", "ci_low", "ci_high", "verdict"]]
    per_method: dict = defaultdict(lambda: defaultdict(list))
    tasks = sorted({t for t, _ in chosen}, key=_task_key)
    for m in _units(chosen):
        if _method(m) == baseline or not METHODS[_method(m)].trains:
            continue
        base_unit = baseline + m[len(_method(m)):]  # the baseline of the same context
        for t in tasks:
            base, runs = chosen.get((t, base_unit)), chosen.get((t, m))
            if not base or not runs:
                continue
            metric = runs[0]["primary_metric"]
            k = _scale(metric)
            by_seed = {r["config"]["seed"]: k * r["metrics"]["test"][metric] for r in base}
            diffs = {r["config"]["seed"]: k * r["metrics"]["test"][metric] - by_seed[r["config"]["seed"]]
                     for r in runs if r["config"]["seed"] in by_seed}
            if not diffs:
                continue
            mean, lo, hi = t_interval(list(diffs.values()))
            rows.append([t, *_cells(m, results), str(len(diffs)), f"{mean:.2f}", f"{lo:.2f}",
                         f"{hi:.2f}", _verdict(lo, hi)])
            for seed, d in diffs.items():
                per_method[m][seed].append(d)
        average = average_over_tasks(per_method[m])
        if average:
            n_tasks, n, mean, lo, hi = average
            rows.append([f"average ({n_tasks} tasks)", *_cells(m, results), str(n),
                         f"{mean:.2f}", f"{lo:.2f}", f"{hi:.2f}", _verdict(lo, hi)])
    return rows


def _units(chosen: dict) -> list[str]:
    """The methods (with their context under --allow-mixed) present, in the registry's order."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted({u for _, u in chosen}, key=lambda u: (order.get(_method(u), len(order)), u))


def _context_columns(results: list[dict]) -> list[str]:
    mixed = next((r for r in results if "_context" in r), None)
    return list(mixed["_context_columns"]) if mixed else []


def _cells(unit: str, results: list[dict]) -> list[str]:
    """The method's label, then its context values under --allow-mixed."""
    if " [" not in unit:
        return [LABELS.get(unit, unit)]
    r = next(r for r in results if _unit(r) == unit)
    return [LABELS.get(_method(unit), _method(unit)), *r["_context"]]


def _verdict(lo: float, hi: float) -> str:
    if math.isnan(lo):
        return "n < 2"
    if lo <= 0 <= hi:
        return "no difference"
    return "better" if lo > 0 else "worse"


def _hp(run: dict) -> str:
    c = run["config"]
    method = METHODS.get(c["method"])
    if method is not None and not method.trains:
        return "untrained"
    keys = ["lr", "targets", "pooling", "steps"] + list(method.hparams if method else ())
    if c.get("bar", "none") != "none":  # LoRA+ with BAR on top
        keys += ["bar"] + (["rho"] if c["bar"] == "sbar" else ["mu0", "schedule"])
    return ", ".join(f"{k}={c[k]}" for k in keys
                     if k in c and not (k == "sam_perturbation" and c[k] == "sync"))


def _scale(metric: str) -> float:
    """Metrics in [0, 1] are shown x100; BLEU is already on a 0-100 scale."""
    return 1.0 if metric.startswith("bleu") else 100.0


def _table(rows: list[list[str]]) -> str:
    """A markdown table; a ``|`` inside a cell (``final mean |B|``) is escaped."""
    rows = [[c.replace("|", "\\|") for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def tables(results: list[dict], reference_method: str = "lora") -> dict[str, list[list[str]]]:
    results = [r for r in results if _finite_metrics(r)]  # failed runs are listed, not averaged
    chosen = select(results)
    tasks = sorted({t for t, _ in chosen}, key=_task_key)
    methods = _units(chosen)
    columns = _context_columns(results)
    blank = ["–"] * len(columns)
    metric = {t: next(r for r in results if r["config"]["task"] == t)["primary_metric"] for t in tasks}

    acc = [["method", *columns] + [f"{t} ({metric[t]})" for t in tasks] + ["avg"]]
    bal = [["method", *columns] + tasks]
    hps = [["task", "method", *columns, "chosen on dev", "dev", "seeds"]]
    for m in methods:
        row, brow, means = _cells(m, results), _cells(m, results), []
        for t in tasks:
            runs = chosen.get((t, m))
            if not runs:
                row.append("–")
                brow.append("–")
                continue
            k = _scale(metric[t])
            mean, std = _mean_std([k * r["metrics"]["test"][metric[t]] for r in runs])
            means.append(mean)
            row.append(f"{mean:.1f} ± {std:.1f} ({len(runs)})")
            b = [r["final_mean_abs_B"] for r in runs if r.get("final_mean_abs_B") is not None]
            brow.append(f"{statistics.fmean(b):.3f}" if b else "–")
            dev, _ = _mean_std([k * r["metrics"]["dev"][metric[t]] for r in runs])
            hps.append([t, *_cells(m, results), _hp(runs[0]), f"{dev:.1f}", str(len(runs))])
        row.append(f"{statistics.fmean(means):.1f}" if len(means) == len(tasks) else "–")
        acc.append(row)
        bal.append(brow)
    majority = ["majority class", *blank]
    for t in tasks:
        refs = [r["majority_class"]["test"][metric[t]] for r in results
                if r["config"]["task"] == t and r.get("majority_class")]
        majority.append(f"{100 * refs[0]:.1f}" if refs else "–")
    if any(c != "–" for c in majority[1:]):
        acc.append(majority + ["–"])

    settings = [["task", "method", *columns, "setting", "dev", "test", "final mean |B|", "ms/step",
                 "seeds"]]
    groups: dict = defaultdict(list)
    for r in results:
        groups[(r["config"]["task"], _unit(r), _hp(r))].append(r)
    order = {m: i for i, m in enumerate(methods)}
    for (task, m, hp), runs in sorted(groups.items(),
                                      key=lambda kv: (_task_key(kv[0][0]), order[kv[0][1]], kv[0][2])):
        pm = runs[0]["primary_metric"]
        k = _scale(pm)
        dev, _ = _mean_std([k * r["metrics"]["dev"][pm] for r in runs])
        test, _ = _mean_std([k * r["metrics"]["test"][pm] for r in runs])
        b = [r["final_mean_abs_B"] for r in runs if r.get("final_mean_abs_B") is not None]
        st = [1e3 * r["timing"]["step_time_median_s"] for r in runs
              if r["timing"]["step_time_median_s"] is not None]
        settings.append([task, *_cells(m, results), hp, f"{dev:.1f}", f"{test:.1f}",
                         f"{statistics.fmean(b):.3f}" if b else "–",
                         f"{statistics.median(st):.0f}" if st else "–", str(len(runs))])

    runtime = [["task"] + [_label(m) for m in methods]]
    for t in tasks:
        row = [t]
        for m in methods:
            runs, ref = chosen.get((t, m)), chosen.get((t, reference_method + m[len(_method(m)):]))
            if not runs or not ref or not METHODS[_method(m)].trains:
                row.append("–")
                continue
            base = statistics.median(r["timing"]["step_time_median_s"] for r in ref)
            s = statistics.median(r["timing"]["step_time_median_s"] for r in runs)
            row.append(f"{s / base:.2f}x ({1e3 * s:.0f} ms)")
        if any((t, reference_method + m[len(_method(m)):]) in chosen for m in methods):
            runtime.append(row)  # a task without reference runs has no row
    out = {"table1": acc, "balancedness": bal, "selection": hps, "runtime": runtime,
           "settings": settings}
    names = {t: list(next(r for r in results if r["config"]["task"] == t)["metrics"]["test"])
             for t in tasks}
    if any(len(v) > 1 for v in names.values()):  # GLUE: F1 and accuracy, Pearson and Spearman
        every = [["task", "method", "metric", "test", "dev"]]
        for t in tasks:
            for m in methods:
                runs = chosen.get((t, m))
                for name in names[t] if runs else ():
                    k = _scale(name)
                    row = [t, _label(m), name]
                    for s_ in ("test", "dev"):  # WebNLG's dev has BLEU only (no seen/unseen)
                        vals = [k * r["metrics"][s_][name] for r in runs
                                if name in r["metrics"][s_]]
                        row.append("{:.1f} ± {:.1f} ({})".format(*_mean_std(vals), len(vals))
                                   if vals else "–")
                    every.append(row)
        out["metrics"] = every
    if any(t == "webnlg" for t in tasks):  # paper Table 5: BLEU on all / seen / unseen
        bleu = [["method", *columns, "BLEU all", "BLEU seen", "BLEU unseen", "dev BLEU"]]
        for m in methods:
            runs = chosen.get(("webnlg", m))
            if runs:
                cells = [_mean_std([r["metrics"][s_][k_] for r in runs])
                         for s_, k_ in (("test", "bleu"), ("test", "bleu_seen"),
                                        ("test", "bleu_unseen"), ("dev", "bleu"))]
                bleu.append(_cells(m, results) + [f"{a:.2f} ± {b:.2f} ({len(runs)})"
                                                  for a, b in cells])
        out["webnlg"] = bleu
    return out


def fig3(results: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = select(results)
    written = []
    for task in sorted({t for t, _ in chosen}, key=_task_key):
        curves = {}
        drawn = [u for u in _units(chosen) if METHODS.get(_method(u)) is not None
                 and METHODS[_method(u)].curve is not None]
        for m in sorted(drawn, key=lambda u: (METHODS[_method(u)].curve, u)):
            runs = chosen.get((task, m))
            if runs and runs[0]["balancedness"]["steps"]:
                curves[m] = min(runs, key=lambda r: r["config"]["seed"])["balancedness"]
        if not curves:
            continue
        names = next(iter(curves.values()))["names"]
        query = [i for i, n in enumerate(names) if ".query[" in n] or list(range(len(names)))
        picks = [query[0], query[len(query) // 2], query[-1]]
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        for ax, i in zip(axes, picks):
            for m, log in curves.items():
                ax.plot(log["steps"], [2 * row[i] for row in log["abs_B"]], label=_label(m))
            layer = names[i].split(".layer.")[-1].split(".")[0] if ".layer." in names[i] else str(i)
            ax.set(title=f"{task}: query layer {layer}", xlabel="step", ylabel="2|B_l|")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = out / f"fig3_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _check_out(folder: Path, out: Path, flag: str = "--out") -> None:
    from ..guard import Input, Output, check_plan

    src, dst = folder.resolve(), out.resolve()
    if dst == src or dst in src.parents:
        raise ValueError(f"Invalid {flag}: {str(out)!r} holds the result files themselves; give "
                         "a folder of its own (default: DIR/report)")
    check_plan([Input("DIR", p) for p in result_files(folder)], [Output(flag, out, "report")])


def _present(results: list[dict], flag: str, method: str) -> None:
    present = sorted({r["config"]["method"] for r in results},
                     key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER))
    if method not in present:
        hint = (f"; {method!r} is a label, give the method's name"
                if method in LABELS.values() else "")
        raise ValueError(f"Invalid {flag}: {method!r} is not a method of these runs (present: "
                         f"{', '.join(present)}){hint}")


def render(folder: str | Path, *, out: str | Path | None = None,
           reference_method: str = "lora", skip_bad: bool = False,
           warn=None, baseline: str = "lora", recursive: bool = False,
           allow_mixed: bool = False, out_flag: str = "--out",
           hint: str = MIXED_HINT) -> list[Path]:
    """Write the tables, report.md and figures of the results of ``folder`` (see the module
    docstring); with ``skip_bad`` bad result files are left out, passed to ``warn`` and listed
    in report.md.  Runs with a non-finite metric are passed to ``warn`` and listed as failed.

    The output folder is built beside ``out`` and swapped in whole: no file of an earlier report
    survives (files a report did not write, e.g. a README, are carried over), and a failure
    leaves the earlier report as it was."""
    import shutil
    import tempfile

    folder = Path(folder)
    out = Path(out) if out is not None else folder / "report"
    results, skipped = load(folder, skip_bad=skip_bad, recursive=recursive)
    columns = check_comparable(results, allow_mixed=allow_mixed, hint=hint)
    _present(results, "--baseline", baseline)
    _present(results, "--reference", reference_method)
    _check_out(folder, out, out_flag)
    results, failed = split_failed(results)
    if not results:
        raise ValueError(f"No finished result in {str(folder)!r}: every run has a non-finite "
                         "dev or test metric")
    for message in skipped:
        if warn is not None:
            warn(f"skipped {message}")
    failed_lines = []
    for r in failed:
        m = r["primary_metric"]
        failed_lines.append(f"{r['_path']}: {r['config']['task']}/{r['config']['method']}/seed "
                            f"{r['config']['seed']}: {m} dev {r['metrics']['dev'].get(m)}, test "
                            f"{r['metrics']['test'].get(m)}")
        if warn is not None:
            warn(f"failed run (non-finite metric), left out: {failed_lines[-1]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        from .protocol import describe, read_record

        record = read_record(folder)
        protocol = describe(record["protocol"], record["baseline"], record.get("lrs")) \
            if record else None
        names = _write_report(results, tmp, reference_method=reference_method, baseline=baseline,
                              skipped=skipped, failed=failed_lines, columns=columns,
                              protocol=protocol)
        publish_folder(tmp, Output(out_flag, out, "report"))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [out / name for name in names]


def _describe(results: list[dict], columns: list[str]) -> str:
    """One line: what every run shares (model, device, precision, threads), or what varies."""
    ctx = _context(results[0])
    parts = [f"model {_show('model', ctx['model'])}", f"device {ctx['device']}",
             f"precision {ctx['precision']}"]
    if ctx.get("threads") is not None:
        parts.append(f"{ctx['threads']} torch thread{'s' if ctx['threads'] != 1 else ''}")
    if not columns:
        return "Every run: " + ", ".join(parts) + "."
    return ("Runs of different contexts (--allow-mixed), never paired across them; they differ in "
            + ", ".join(columns) + ".")


def _write_report(results: list[dict], out: Path, *, reference_method: str, baseline: str,
                  skipped: list[str], failed: list[str], columns: list[str],
                  protocol: str | None = None) -> list[str]:
    from .mechanism import layer_rows, paired_rows

    t = tables(results, reference_method)
    verdicts = paired(results, baseline)
    t["paired"] = [r[:-1] for r in verdicts]  # paired.csv: without the verdict column
    chosen = select(results)
    order = sorted(chosen, key=lambda k: (task_order(k[0]), METHOD_ORDER.index(k[1])
                                          if k[1] in METHOD_ORDER else len(METHOD_ORDER)))
    balance = paired_rows(chosen, order, baseline)
    if len(balance) > 1:
        t["balancedness_paired"] = balance
        t["balancedness_layers"] = layer_rows(chosen, order, baseline)
    written = []
    for name, rows in t.items():
        (out / f"{name}.csv").write_text(_csv(rows))
        written.append(f"{name}.csv")
    md = [
        "# Results", "", *([protocol, ""] if protocol else []),
        f"{len(results)} runs. Test metric (×100; BLEU as is), mean ± std over seeds (number of "
        "seeds), for each "
        "method's hyperparameters chosen on the dev split. Majority class: the most frequent "
        "training label (ties: the lowest label id) predicted for every test example.", "",
        _describe(results, columns), "",
        _table(t["table1"]), "", "## Final mean |B| over LoRA pairs (selected runs)", "",
        _table(t["balancedness"]), "", "## Chosen hyperparameters", "", _table(t["selection"]), "",
        f"## Per-iteration time, normalized to {LABELS.get(reference_method, reference_method)}",
        "", _table(t["runtime"]), "",
        "## Every setting (mean over its seeds)", "", _table(t["settings"]), "",
    ]
    if "metrics" in t:
        md += ["## Every metric of every task (selected runs; mean ± std over seeds)", "",
               _table(t["metrics"]), ""]
    if "webnlg" in t:
        md += ["## WebNLG BLEU (sacrebleu, all references), mean ± std over seeds", "",
               _table(t["webnlg"]), ""]
    if len(verdicts) > 1:
        md += [f"## Paired differences to {LABELS.get(baseline, baseline)} (test, 95% t-interval "
               "over seeds)", "",
               "Same seed = same split, initialization and data order; each method at its "
               "dev-chosen setting. \"no difference\": the interval covers 0.", "",
               _table(verdicts), ""]
    if len(balance) > 1:
        md += [f"## Balancedness relative to {LABELS.get(baseline, baseline)} (paired over seeds)",
               "", "Percent difference of the mean |B| over LoRA pairs, final and averaged over "
               "the logged steps, each method at its dev-chosen setting against the baseline's "
               "run of the same seed; n seeds, 95% t-interval. Per layer: "
               "`balancedness_layers.csv`.", "", _table(balance), ""]
    ties = select_with_ties(results)[1]
    if ties:
        md += [f"## Ties on dev ({len(ties)})", "", f"Rule: {TIE_RULE}.", ""]
        md += [f"- {t['task']} / {_label(t['method'])}: {' | '.join(t['settings'])} -> "
               f"**{t['chosen']}** (by {t['by']})" for t in ties] + [""]
    if failed:
        md += [f"## Failed runs ({len(failed)}: a non-finite metric; not selected or averaged)",
               ""] + [f"- {m}" for m in failed] + [""]
    if skipped:
        md += [f"## Skipped files ({len(skipped)}: --skip-bad, or altered)", ""]
        md += [f"- {m}" for m in skipped]
        md += [""]
    (out / "report.md").write_text("\n".join(md))
    written.append("report.md")
    written += [p.name for p in fig3(results, out)]
    return written
