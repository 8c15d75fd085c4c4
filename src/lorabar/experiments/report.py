"""Tables and figures from a folder of result files (``lorabar report DIR``).

* Table 1 analog: tasks x methods, test metric mean ± std over seeds, for each method's
  hyperparameters chosen on **dev** (mean dev metric over seeds); with the final mean |B| per
  method, the majority-class reference and full finetuning where present (markdown and CSV).
* Runtime table: median per-iteration time per method, normalized to LoRA on the same task
  (paper Tables 2/7), from the same runs.
* Fig. 3 analog: |B_l| over steps for the first, middle and last query layers, LoRA vs SAM vs
  nBAR (PNG per task).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from .methods import METHODS

METHOD_ORDER = tuple(METHODS)  # the registry's order
LABELS = {name: m.label for name, m in METHODS.items()}
# The paper's Table 1 order first, then the other tasks.
TASK_ORDER = ("sst2", "sst5", "snli", "mnli", "rte", "trec", "mrpc", "cola", "qnli", "qqp", "stsb",
              "cb", "copa", "webnlg")


def _task_key(task: str) -> tuple[int, str]:
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


REQUIRED = ("config", "key", "metrics", "primary_metric")


class BadResultError(ValueError):
    """A result file that does not parse or lacks what a report needs (names the file)."""


def _check_result(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BadResultError(f"{path}: not a readable JSON result ({err}); a truncated write? "
                             "Delete it and rerun its grid, or pass --skip-bad") from None
    if not isinstance(data, dict):
        raise BadResultError(f"{path}: not a result (a JSON {type(data).__name__}, expected an "
                             "object); pass --skip-bad to leave it out")
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
    return data


def load(folder: str | Path, *, skip_bad: bool = False) -> tuple[list[dict], list[str]]:
    """Every result under ``folder`` and the messages of the files left out (``skip_bad``);
    without ``skip_bad`` a bad file raises :class:`BadResultError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Result folder {str(folder)!r} does not exist")
    out, skipped = [], []
    for path in sorted(folder.rglob("*.json")):
        if path.name.endswith(".error.json"):
            continue
        try:
            data = _check_result(path)
        except BadResultError as err:
            if not skip_bad:
                raise
            skipped.append(str(err).replace("; pass --skip-bad to leave it out", "")
                           .replace(", or pass --skip-bad", ""))
            continue
        data["_path"] = str(path)
        out.append(data)
    if not out:
        raise ValueError(f"No result files (JSON with 'config' and 'metrics') under {str(folder)!r}")
    return out, skipped


def load_results(folder: str | Path, *, skip_bad: bool = False) -> list[dict]:
    """Every result under ``folder`` (see :func:`load`)."""
    return load(folder, skip_bad=skip_bad)[0]


def _setting(r: dict) -> str:
    key = dict(r["key"])
    key.pop("seed", None)
    return json.dumps(key, sort_keys=True)


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def select(results: list[dict]) -> dict:
    """``{(task, method): runs of the setting with the best mean dev metric}``.

    Settings are compared on the seeds they all have (a tuning seed run for every setting,
    then more seeds for the chosen one, compares on the tuning seed), else on their own.
    """
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[(r["config"]["task"], r["config"]["method"])][_setting(r)].append(r)
    chosen = {}
    for key, settings in groups.items():
        common = set.intersection(*({r["config"]["seed"] for r in runs}
                                    for runs in settings.values()))

        def dev_score(runs):
            m = runs[0]["primary_metric"]
            use = [x for x in runs if x["config"]["seed"] in common] or runs
            return statistics.fmean(x["metrics"]["dev"][m] for x in use)

        chosen[key] = max(settings.values(), key=lambda runs: (dev_score(runs), len(runs)))
    return chosen


def t_interval(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and ``level`` t-interval of paired differences (NaN bounds for n < 2)."""
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = t.ppf(0.5 + level / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


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
    rows = [["task", "method", "n", "mean_diff", "ci_low", "ci_high", "verdict"]]
    per_method: dict = defaultdict(lambda: defaultdict(list))
    tasks = sorted({t for t, _ in chosen}, key=_task_key)
    for m in METHOD_ORDER:
        if m == baseline or not METHODS[m].trains:
            continue
        for t in tasks:
            base, runs = chosen.get((t, baseline)), chosen.get((t, m))
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
            rows.append([t, LABELS[m], str(len(diffs)), f"{mean:.2f}", f"{lo:.2f}", f"{hi:.2f}",
                         _verdict(lo, hi)])
            for seed, d in diffs.items():
                per_method[m][seed].append(d)
        average = average_over_tasks(per_method[m])
        if average:
            n_tasks, n, mean, lo, hi = average
            rows.append([f"average ({n_tasks} tasks)", LABELS[m], str(n), f"{mean:.2f}",
                         f"{lo:.2f}", f"{hi:.2f}", _verdict(lo, hi)])
    return rows


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
    return ", ".join(f"{k}={c[k]}" for k in keys
                     if k in c and not (k == "sam_perturbation" and c[k] == "sync"))


def _scale(metric: str) -> float:
    """Metrics in [0, 1] are shown x100; BLEU is already on a 0-100 scale."""
    return 1.0 if metric.startswith("bleu") else 100.0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def tables(results: list[dict], reference_method: str = "lora") -> dict[str, list[list[str]]]:
    chosen = select(results)
    tasks = sorted({t for t, _ in chosen}, key=_task_key)
    methods = [m for m in METHOD_ORDER if any(k[1] == m for k in chosen)]
    metric = {t: next(r for r in results if r["config"]["task"] == t)["primary_metric"] for t in tasks}

    acc = [["method"] + [f"{t} ({metric[t]})" for t in tasks] + ["avg"]]
    bal = [["method"] + tasks]
    hps = [["task", "method", "chosen on dev", "dev", "seeds"]]
    for m in methods:
        row, brow, means = [LABELS[m]], [LABELS[m]], []
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
            hps.append([t, LABELS[m], _hp(runs[0]), f"{dev:.1f}", str(len(runs))])
        row.append(f"{statistics.fmean(means):.1f}" if len(means) == len(tasks) else "–")
        acc.append(row)
        bal.append(brow)
    majority = ["majority class"]
    for t in tasks:
        refs = [r["majority_class"]["test"][metric[t]] for r in results
                if r["config"]["task"] == t and r.get("majority_class")]
        majority.append(f"{100 * refs[0]:.1f}" if refs else "–")
    if any(c != "–" for c in majority[1:]):
        acc.append(majority + ["–"])

    settings = [["task", "method", "setting", "dev", "test", "final mean |B|", "ms/step", "seeds"]]
    groups: dict = defaultdict(list)
    for r in results:
        groups[(r["config"]["task"], r["config"]["method"], _hp(r))].append(r)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    for (task, m, hp), runs in sorted(groups.items(),
                                      key=lambda kv: (_task_key(kv[0][0]), order[kv[0][1]], kv[0][2])):
        pm = runs[0]["primary_metric"]
        k = _scale(pm)
        dev, _ = _mean_std([k * r["metrics"]["dev"][pm] for r in runs])
        test, _ = _mean_std([k * r["metrics"]["test"][pm] for r in runs])
        b = [r["final_mean_abs_B"] for r in runs if r.get("final_mean_abs_B") is not None]
        st = [1e3 * r["timing"]["step_time_median_s"] for r in runs
              if r["timing"]["step_time_median_s"] is not None]
        settings.append([task, LABELS[m], hp, f"{dev:.1f}", f"{test:.1f}",
                         f"{statistics.fmean(b):.3f}" if b else "–",
                         f"{statistics.median(st):.0f}" if st else "–", str(len(runs))])

    runtime = [["task"] + [LABELS[m] for m in methods]]
    for t in tasks:
        ref = chosen.get((t, reference_method))
        if not ref:
            continue
        base = statistics.median(r["timing"]["step_time_median_s"] for r in ref)
        row = [t]
        for m in methods:
            runs = chosen.get((t, m))
            if not runs or not METHODS[m].trains:
                row.append("–")
                continue
            s = statistics.median(r["timing"]["step_time_median_s"] for r in runs)
            row.append(f"{s / base:.2f}x ({1e3 * s:.0f} ms)")
        runtime.append(row)
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
                    row = [t, LABELS[m], name]
                    for s_ in ("test", "dev"):  # WebNLG's dev has BLEU only (no seen/unseen)
                        vals = [k * r["metrics"][s_][name] for r in runs
                                if name in r["metrics"][s_]]
                        row.append("{:.1f} ± {:.1f} ({})".format(*_mean_std(vals), len(vals))
                                   if vals else "–")
                    every.append(row)
        out["metrics"] = every
    if any(t == "webnlg" for t in tasks):  # paper Table 5: BLEU on all / seen / unseen
        bleu = [["method", "BLEU all", "BLEU seen", "BLEU unseen", "dev BLEU"]]
        for m in methods:
            runs = chosen.get(("webnlg", m))
            if runs:
                cells = [_mean_std([r["metrics"][s_][k_] for r in runs])
                         for s_, k_ in (("test", "bleu"), ("test", "bleu_seen"),
                                        ("test", "bleu_unseen"), ("dev", "bleu"))]
                bleu.append([LABELS[m]] + [f"{a:.2f} ± {b:.2f} ({len(runs)})" for a, b in cells])
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
        for m in ("lora", "sam", "nbar", "obar"):
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
                ax.plot(log["steps"], [2 * row[i] for row in log["abs_B"]], label=LABELS[m])
            layer = names[i].split(".layer.")[-1].split(".")[0] if ".layer." in names[i] else str(i)
            ax.set(title=f"{task}: query layer {layer}", xlabel="step", ylabel="2|B_l|")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = out / f"fig3_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def render(folder: str | Path, *, out: str | Path | None = None,
           reference_method: str = "lora", skip_bad: bool = False,
           warn=None, baseline: str = "lora") -> list[Path]:
    """Write the tables, report.md and figures of the results under ``folder``; with
    ``skip_bad`` bad result files are left out, passed to ``warn`` and listed in report.md."""
    results, skipped = load(folder, skip_bad=skip_bad)
    for message in skipped:
        if warn is not None:
            warn(f"skipped {message}")
    out = Path(out) if out is not None else Path(folder) / "report"
    out.mkdir(parents=True, exist_ok=True)
    t = tables(results, reference_method)
    verdicts = paired(results, baseline)
    t["paired"] = [r[:6] for r in verdicts]  # paired.csv: without the verdict column
    written = []
    for name, rows in t.items():
        (out / f"{name}.csv").write_text(_csv(rows))
        written.append(out / f"{name}.csv")
    md = [
        "# Results", "",
        f"{len(results)} runs. Test metric (×100; BLEU as is), mean ± std over seeds (number of "
        "seeds), for each "
        "method's hyperparameters chosen on the dev split. Majority class: the most frequent "
        "training label (ties: the lowest label id) predicted for every test example.", "",
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
    if skipped:
        md += [f"## Skipped files ({len(skipped)}, --skip-bad)", ""] + [f"- {m}" for m in skipped]
        md += [""]
    (out / "report.md").write_text("\n".join(md))
    written.append(out / "report.md")
    written += fig3(results, out)
    return written
