"""The Fig. 3 analog: |B_l| over steps for the first, middle and last query layers (PNG per
task), the methods the registry draws."""

from __future__ import annotations

from pathlib import Path

from ..run.registry import METHODS
from .naming import label_of, method_of, task_order, units_of
from .selection import select

def fig3(results: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = select(results)
    written = []
    for task in sorted({t for t, _ in chosen}, key=task_order):
        curves = {}
        drawn = [u for u in units_of(chosen) if METHODS.get(method_of(u)) is not None
                 and METHODS[method_of(u)].curve is not None]
        for m in sorted(drawn, key=lambda u: (METHODS[method_of(u)].curve, u)):
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
        fig.tight_layout()
        path = out / f"fig3_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
