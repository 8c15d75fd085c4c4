"""Task metrics through scikit-learn / scipy."""

from __future__ import annotations


def compute_metrics(task, preds: list, labels: list) -> dict:
    """Return every metric of ``task`` (accuracy, f1, mcc, pearson, spearman) as floats."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    out = {}
    for name in task.metrics:
        if name == "accuracy":
            out[name] = float(accuracy_score(labels, preds))
        elif name == "f1":
            out[name] = float(f1_score(labels, preds))
        elif name == "mcc":
            out[name] = float(matthews_corrcoef(labels, preds))
        elif name == "pearson":
            out[name] = float(pearsonr(preds, labels)[0])
        elif name == "spearman":
            out[name] = float(spearmanr(preds, labels)[0])
        else:  # pragma: no cover - task definitions are static
            raise ValueError(f"Unknown metric {name!r}")
    return out
