"""The Fig. 3 analog: |B_l| over steps for the first, middle and last query layers (PNG per
task), the methods the registry draws."""

from __future__ import annotations

from pathlib import Path

from ..run.registry import METHODS
from ..run.result import RunRecord
from .naming import label_of, task_order, units_of
from .selection import select


def fig3(results: list[RunRecord], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = select(results)
    written = []
    for task in sorted({t for t, _ in chosen}, key=task_order):
        curves = {}
        drawn = [
            u
            for u in units_of(chosen)
            if METHODS.get(u.method) is not None and METHODS[u.method].curve is not None
        ]
        for m in sorted(drawn, key=lambda u: (METHODS[u.method].curve, str(u))):
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
                ax.plot(log["steps"], [2 * row[i] for row in log["abs_B"]], label=label_of(m))
            layer = names[i].split(".layer.")[-1].split(".")[0] if ".layer." in names[i] else str(i)
            ax.set(title=f"{task}: query layer {layer}", xlabel="step", ylabel="2|B_l|")
        axes[0].legend(fontsize=8)
        # fixed margins that fit the labels above: tight_layout measured every tick label again
        # and cost a third of the figure's time (a report draws one per task)
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.91, wspace=0.25)
        path = out / f"fig3_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def paired_figure(rows: list[list[str]], out: Path, baseline: str) -> Path | None:
    """``paired.png``: a forest plot of every paired difference to the baseline with its 95%
    interval (per task, then the average over tasks), zero marked, and the paper's reported gain
    (`paper_gains`) as a cross where the task is the paper's.
    ``rows``: `paired()`'s table (header first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .naming import LABELS

    head, body = rows[0], rows[1:]
    if not body:
        return None
    col = {name: i for i, name in enumerate(head)}
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.28 * len(body)))
    marked = _draw_rows(ax, body, col)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_yticks(range(len(body)))
    ax.set_yticklabels(
        [f"{r[col['task']]}  {r[col['method']]}  (n={r[col['n']]})" for r in reversed(body)],
        fontsize=7,
    )
    name = LABELS.get(baseline, baseline)
    ax.set_xlabel(
        f"test difference to {name} (points), mean and 95% t-interval over seeds"
        + ("; x: the paper's gain" if marked else ""),
        fontsize=8,
    )
    fig.tight_layout()
    path = out / "paired.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_rows(ax, body: list[list[str]], col: dict[str, int]) -> bool:
    """Each row's mean and interval, bottom-up, a colour per method, and the paper's gain as a
    cross (its average only where a method has exactly the paper's tasks); whether one was."""
    from .naming import LABELS
    from .paper_gains import PAPER_GAINS, PAPER_TASKS

    by_label = {LABELS[m]: m for m in METHODS}
    labels = list(dict.fromkeys(r[col["method"]] for r in body))
    colors = {label: f"C{i}" for i, label in enumerate(labels)}
    tasks_of = {
        label: {
            r[col["task"]]
            for r in body
            if r[col["method"]] == label and not r[col["task"]].startswith("average")
        }
        for label in labels
    }
    marked = False
    for y, r in enumerate(reversed(body)):
        mean, lo, hi = (float(r[col[k]]) for k in ("mean_diff", "ci_low", "ci_high"))
        task, label = r[col["task"]], r[col["method"]]
        ax.errorbar(
            mean,
            y,
            xerr=[[mean - lo], [hi - mean]],
            fmt="o",
            color=colors[label],
            capsize=3,
            markersize=4,
        )
        key = "average" if task.startswith("average") else task
        gain = PAPER_GAINS.get((by_label.get(label, label), key))
        if key == "average" and tasks_of[label] != PAPER_TASKS:
            gain = None  # the paper's average is over its six tasks only
        if gain is not None:
            ax.plot(gain, y, "x", color=colors[label], markersize=7)
            marked = True
    return marked
