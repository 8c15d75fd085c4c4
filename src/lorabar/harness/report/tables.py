"""The report's tables (lists of rows; `markdown_table()` and `csv_text()` render them):
the Table 1 analog (test metric per task and method at the dev-chosen setting), final |B|, the
chosen hyperparameters, every setting, per-iteration time normalized to a reference method,
every metric of every task, WebNLG's BLEU."""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict

from ..run.registry import BASELINE, METHODS
from .load import finite_metrics
from ..run.result import MethodUnit, RunRecord
from .naming import (
    cells,
    context_columns,
    hparams_text,
    label_of,
    metric_scale,
    task_order,
    units_of,
)
from .selection import mean_std, select, selection_seeds

Rows = list[list[str]]


def markdown_table(rows: list[list[str]]) -> str:
    """A markdown table; a ``|`` inside a cell (``final mean |B|``) is escaped."""
    rows = [[c.replace("|", "\\|") for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def tables(results: list[RunRecord], reference_method: str = BASELINE) -> dict[str, Rows]:
    """Every table of the report, by name (the CSV file names)."""
    results = [r for r in results if finite_metrics(r)]  # failed runs are listed, not averaged
    chosen = select(results)
    tasks = sorted({t for t, _ in chosen}, key=task_order)
    methods = units_of(chosen)
    columns = context_columns(results)
    metric = {
        t: next(r for r in results if r["config"]["task"] == t)["primary_metric"] for t in tasks
    }
    seeds = selection_seeds(results)
    acc, bal, hps = _chosen_tables(results, chosen, tasks, methods, columns, metric, seeds)
    out = {
        "table1": acc,
        "balancedness": bal,
        "selection": hps,
        "runtime": _runtime_table(chosen, tasks, methods, reference_method),
        "settings": _settings_table(results, methods, columns, seeds),
    }
    names = {
        t: list(next(r for r in results if r["config"]["task"] == t)["metrics"]["test"])
        for t in tasks
    }
    if any(len(v) > 1 for v in names.values()):  # GLUE: F1 and accuracy, Pearson and Spearman
        out["metrics"] = _metrics_table(chosen, tasks, methods, names)
    if any(t == "webnlg" for t in tasks):  # paper Table 5: BLEU on all / seen / unseen
        out["webnlg"] = _webnlg_table(results, chosen, methods, columns)
    return out


def _on_seeds(runs: list[RunRecord], seeds: set, metric: str) -> str:
    """The mean dev metric over the runs on ``seeds`` (what selection compared), with n."""
    use = [r for r in runs if r["config"]["seed"] in seeds]
    if not use:
        return "–"
    mean, _ = mean_std([metric_scale(metric) * r["metrics"]["dev"][metric] for r in use])
    return f"{mean:.1f} ({len(use)})"


def _chosen_tables(
    results, chosen, tasks, methods, columns, metric, seeds
) -> tuple[Rows, Rows, Rows]:
    """The Table 1 analog (with the majority class), final mean |B| and the chosen settings:
    the dev value the choice was made on (the seeds every setting has) apart from the mean
    over all the chosen setting's seeds, so that a tie on the tuning seed stays visible."""
    acc = [["method", *columns] + [f"{t} ({metric[t]})" for t in tasks] + ["avg"]]
    bal = [["method", *columns] + tasks]
    hps = [["task", "method", *columns, "chosen on dev", "dev compared (n)", "dev, all seeds (n)"]]
    for m in methods:
        row, brow, means = cells(m), cells(m), []
        for t in tasks:
            runs = chosen.get((t, m))
            if not runs:
                row.append("–")
                brow.append("–")
                continue
            k = metric_scale(metric[t])
            mean, std = mean_std([k * r["metrics"]["test"][metric[t]] for r in runs])
            means.append(mean)
            row.append(f"{mean:.1f} ± {std:.1f} ({len(runs)})")
            b = [r["final_mean_abs_B"] for r in runs if r.get("final_mean_abs_B") is not None]
            brow.append(f"{statistics.fmean(b):.3f}" if b else "–")
            dev, _ = mean_std([k * r["metrics"]["dev"][metric[t]] for r in runs])
            hps.append(
                [
                    t,
                    *cells(m),
                    hparams_text(runs[0]),
                    _on_seeds(runs, seeds.get((t, m), set()), metric[t]),
                    f"{dev:.1f} ({len(runs)})",
                ]
            )
        row.append(f"{statistics.fmean(means):.1f}" if len(means) == len(tasks) else "–")
        acc.append(row)
        bal.append(brow)
    majority = ["majority class", *(["–"] * len(columns))]
    for t in tasks:
        refs = [
            r["majority_class"]["test"][metric[t]]
            for r in results
            if r["config"]["task"] == t and r.get("majority_class")
        ]
        majority.append(f"{metric_scale(metric[t]) * refs[0]:.1f}" if refs else "–")
    if any(c != "–" for c in majority[1:]):
        acc.append(majority + ["–"])
    return acc, bal, hps


def _settings_table(
    results: list[RunRecord], methods: list[MethodUnit], columns: list[str], seeds: dict
) -> Rows:
    """Every setting that ran: the dev metric selection compared (on the seeds every setting of
    its task and method has), its mean dev and test metric over all its seeds, |B|, step time."""
    settings = [
        [
            "task",
            "method",
            *columns,
            "setting",
            "dev compared (n)",
            "dev, all seeds",
            "test, all seeds",
            "final mean |B|",
            "ms/step",
            "seeds",
        ]
    ]
    groups: dict = defaultdict(list)
    for r in results:
        groups[(r["config"]["task"], r.unit, hparams_text(r))].append(r)
    order = {m: i for i, m in enumerate(methods)}
    for (task, m, hp), runs in sorted(
        groups.items(), key=lambda kv: (task_order(kv[0][0]), order[kv[0][1]], kv[0][2])
    ):
        pm = runs[0]["primary_metric"]
        k = metric_scale(pm)
        dev, _ = mean_std([k * r["metrics"]["dev"][pm] for r in runs])
        test, _ = mean_std([k * r["metrics"]["test"][pm] for r in runs])
        b = [r["final_mean_abs_B"] for r in runs if r.get("final_mean_abs_B") is not None]
        st = [
            1e3 * r["timing"]["step_time_median_s"]
            for r in runs
            if r["timing"]["step_time_median_s"] is not None
        ]
        settings.append(
            [
                task,
                *cells(m),
                hp,
                _on_seeds(runs, seeds.get((task, m), set()), pm),
                f"{dev:.1f}",
                f"{test:.1f}",
                f"{statistics.fmean(b):.3f}" if b else "–",
                f"{statistics.median(st):.0f}" if st else "–",
                str(len(runs)),
            ]
        )
    return settings


def _runtime_table(
    chosen: dict, tasks: list[str], methods: list[MethodUnit], reference_method: str
) -> Rows:
    """Median step time of each chosen setting over the reference method's, per task."""
    runtime = [["task"] + [label_of(m) for m in methods]]
    for t in tasks:
        row = [t]
        for m in methods:
            runs, ref = chosen.get((t, m)), chosen.get((t, m.of(reference_method)))
            if not runs or not ref or not METHODS[m.method].trains:
                row.append("–")
                continue
            base = statistics.median(r["timing"]["step_time_median_s"] for r in ref)
            s = statistics.median(r["timing"]["step_time_median_s"] for r in runs)
            row.append(f"{s / base:.2f}x ({1e3 * s:.0f} ms)")
        if any((t, m.of(reference_method)) in chosen for m in methods):
            runtime.append(row)  # a task without reference runs has no row
    return runtime


def _metrics_table(chosen: dict, tasks: list[str], methods: list[MethodUnit], names: dict) -> Rows:
    """Every metric of every task for the chosen settings (test and dev, mean ± std)."""
    every = [["task", "method", "metric", "test", "dev"]]
    for t in tasks:
        for m in methods:
            runs = chosen.get((t, m))
            for name in names[t] if runs else ():
                k = metric_scale(name)
                row = [t, label_of(m), name]
                for s_ in ("test", "dev"):  # WebNLG's dev has BLEU only (no seen/unseen)
                    vals = [k * r["metrics"][s_][name] for r in runs if name in r["metrics"][s_]]
                    row.append(
                        "{:.1f} ± {:.1f} ({})".format(*mean_std(vals), len(vals)) if vals else "–"
                    )
                every.append(row)
    return every


def _webnlg_table(
    results: list[RunRecord], chosen: dict, methods: list[MethodUnit], columns: list[str]
) -> Rows:
    """Paper Table 5's columns: BLEU on all, seen and unseen test inputs, and dev BLEU."""
    bleu = [["method", *columns, "BLEU all", "BLEU seen", "BLEU unseen", "dev BLEU"]]
    for m in methods:
        runs = chosen.get(("webnlg", m))
        if runs:
            values = [
                mean_std([r["metrics"][s_][k_] for r in runs])
                for s_, k_ in (
                    ("test", "bleu"),
                    ("test", "bleu_seen"),
                    ("test", "bleu_unseen"),
                    ("dev", "bleu"),
                )
            ]
            bleu.append(cells(m) + [f"{a:.2f} ± {b:.2f} ({len(runs)})" for a, b in values])
    return bleu
