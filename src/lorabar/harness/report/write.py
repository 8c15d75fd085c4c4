"""Writing a report folder: the tables as CSV, report.md and the figures, built beside the
output folder and swapped in whole (`render()`)."""

from __future__ import annotations

from pathlib import Path

from ...guard import Output
from ...publish import publish_folder, staging
from ..run.registry import BASELINE
from .figures import fig3, paired_figure
from .load import (
    MIXED_HINT,
    check_comparable,
    context_of,
    in_context,
    load,
    result_files,
    show_value,
    split_failed,
)
from ..run.result import RunRecord
from .naming import LABELS, METHOD_ORDER, context_columns, label_of, task_order
from .edges import edge_lines
from .paired import check_pairing, holm_family, paired
from .selection import TIE_RULE, select, select_with_ties
from .tables import csv_text, markdown_table, tables
from .verdicts import DEFAULT_MARGIN


def _check_out(folder: Path, out: Path, flag: str = "--out") -> None:
    from ...guard import Input, Output, check_plan

    src, dst = folder.resolve(), out.resolve()
    if dst == src or dst in src.parents:
        raise ValueError(
            f"Invalid {flag}: {str(out)!r} holds the result files themselves; give "
            "a folder of its own (default: DIR/report)"
        )
    check_plan([Input("DIR", p) for p in result_files(folder)], [Output(flag, out, "report")])


def _present(results: list[RunRecord], wanted: dict[str, str]) -> None:
    """Refuse, naming every one at once, a ``{flag: method}`` whose method has no run here."""
    present = sorted(
        {r["config"]["method"] for r in results},
        key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER),
    )
    problems = []
    for flag, method in wanted.items():
        if method not in present:
            hint = (
                f" ({method!r} is a label, give the method's name)"
                if method in LABELS.values()
                else ""
            )
            problems.append(f"{flag} {method!r}{hint}")
    if problems:
        raise ValueError(
            f"Invalid {' and '.join(problems)}: not a method of these runs "
            f"(present: {', '.join(present)})"
        )


def render(
    folder: str | Path,
    *,
    out: str | Path | None = None,
    reference_method: str = BASELINE,
    skip_bad: bool = False,
    warn=None,
    baseline: str = BASELINE,
    recursive: bool = False,
    allow_mixed: bool = False,
    out_flag: str = "--out",
    hint: str = MIXED_HINT,
    margin: float = DEFAULT_MARGIN,
    title: str | None = None,
    notes: list[str] | None = None,
) -> list[Path]:
    """Write the tables, report.md and figures of the results of ``folder`` (see the module
    docstring); with ``skip_bad`` bad result files are left out, passed to ``warn`` and listed
    in report.md.  Runs with a non-finite metric are passed to ``warn`` and listed as failed.

    The output folder is built beside ``out`` and swapped in whole: no file of an earlier report
    survives (files a report did not write, e.g. a README, are carried over), and a failure
    leaves the earlier report as it was.  ``margin``: the verdicts' equivalence margin in the
    metric's points (`.verdicts`); ``title``: report.md's heading (default: "Report: " and the
    results folder's name); ``notes``: the adapters ``compare --save-adapters`` kept, one line
    each with the command that reproduces it (a section of report.md)."""

    folder = Path(folder)
    out = Path(out) if out is not None else folder / "report"
    check_pairing(baseline, margin)
    results, skipped = load(folder, skip_bad=skip_bad, recursive=recursive)
    columns = check_comparable(results, allow_mixed=allow_mixed, hint=hint)
    _present(results, {"--baseline": baseline, "--reference": reference_method})
    _check_out(folder, out, out_flag)
    results, failed = split_failed(in_context(results, columns))
    if not results:
        raise ValueError(
            f"No finished result in {str(folder)!r}: every run has a non-finite dev or test metric"
        )
    warn = warn or (lambda message: None)
    failed_lines = _left_out(skipped, failed, warn)
    report = Output(out_flag, out, "report")
    with staging(report) as tmp:  # built beside, then swapped in whole
        names = _write_report(
            results,
            tmp,
            reference_method=reference_method,
            baseline=baseline,
            skipped=skipped,
            failed=failed_lines,
            columns=columns,
            provenance=_provenance(folder, warn),
            margin=margin,
            title=title or f"Report: {folder.resolve().name}",
            notes=notes,
        )
        publish_folder(tmp, report)
    return [out / name for name in names]


def _left_out(skipped: list[str], failed: list[RunRecord], warn) -> list[str]:
    """Pass each skipped file and failed run to ``warn``; the failed runs' lines."""
    for message in skipped:
        warn(f"skipped {message}")
    lines = [_failed_line(r) for r in failed]
    for line in lines:
        warn(f"failed run (non-finite metric), left out: {line}")
    return lines


def _failed_line(r: RunRecord) -> str:
    """A failed run, as report.md lists it: where, which run, its non-finite metric."""
    m, c = r["primary_metric"], r["config"]
    return (
        f"{r.path}: {c['task']}/{c['method']}/seed {c['seed']}: {m} dev "
        f"{r['metrics']['dev'].get(m)}, test {r['metrics']['test'].get(m)}"
    )


def _provenance(folder: Path, warn) -> tuple[list[str], list[str]]:
    """report.md's head -- the protocol ``lorabar compare`` recorded, and the folder's status
    when it is not current -- and its provenance note at the end: the status, the code
    revisions and the commands of the folder's manifest."""
    from ..plan.manifest import read_manifest
    from ..plan.protocol import describe, read_record

    record = read_record(folder)
    protocol = (
        describe(record["protocol"], record["baseline"], record.get("lrs")) if record else None
    )
    head = [protocol] if protocol else []
    manifest = read_manifest(folder)
    if manifest is None:
        return head, []
    if manifest.status != "current":
        head.insert(0, manifest.headline())
        if warn is not None:
            warn(f"{folder} is marked {manifest.status}: {manifest.reason}")
    return head, [manifest.headline()] + [f"Made by `{c}`." for c in manifest.commands]


def _describe(results: list[RunRecord], columns: list[str]) -> str:
    """One line: what every run shares (model, device, precision, threads), or what varies."""
    ctx = context_of(results[0])
    parts = [
        f"model {show_value('model', ctx['model'])}",
        f"device {ctx['device']}",
        f"precision {ctx['precision']}",
    ]
    if ctx.get("threads") is not None:
        parts.append(f"{ctx['threads']} torch thread{'s' if ctx['threads'] != 1 else ''}")
    if not columns:
        return "Every run: " + ", ".join(parts) + "."
    return (
        "Runs of different contexts (--allow-mixed), never paired across them; they differ in "
        + ", ".join(columns)
        + "."
    )


def _write_report(
    results: list[RunRecord],
    out: Path,
    *,
    reference_method: str,
    baseline: str,
    skipped: list[str],
    failed: list[str],
    columns: list[str],
    provenance: tuple[list[str], list[str]] = ([], []),
    margin: float = DEFAULT_MARGIN,
    title: str = "Report",
    notes: list[str] | None = None,
) -> list[str]:
    t = _all_tables(results, reference_method, baseline, margin)
    verdicts, balance = t["paired"], t.get("balancedness_paired", [])
    written = []
    for name, rows in t.items():
        (out / f"{name}.csv").write_text(csv_text(rows))
        written.append(f"{name}.csv")
    md = _markdown(
        results,
        t,
        columns,
        reference_method=reference_method,
        head=provenance[0],
        plot=f"![Paired differences to {LABELS.get(baseline, baseline)}](paired.png)"
        if len(verdicts) > 1
        else None,
        title=title,
    )
    md += _sections(results, verdicts, balance, baseline=baseline, failed=failed, skipped=skipped)
    md += _closing(notes, provenance[1])
    (out / "report.md").write_text("\n".join(md))
    written.append("report.md")
    written += [p.name for p in fig3(results, out)]
    if len(verdicts) > 1 and paired_figure(verdicts, out, baseline) is not None:
        written.append("paired.png")
    return written


def _all_tables(
    results: list[RunRecord], reference_method: str, baseline: str, margin: float
) -> dict:
    """Every CSV of the report by name: `tables()`, the paired differences, and (where a
    method's |B| pairs with the baseline's) the balancedness tables."""
    from .mechanism import layer_rows, paired_rows

    t = tables(results, reference_method)
    t["paired"] = paired(results, baseline, margin)
    chosen = select(results)
    order = sorted(
        chosen,
        key=lambda k: (
            task_order(k[0]),
            METHOD_ORDER.index(k[1].method) if k[1].method in METHOD_ORDER else len(METHOD_ORDER),
        ),
    )
    columns = context_columns(results)
    balance = paired_rows(chosen, order, baseline, columns)
    if len(balance) > 1:
        t["balancedness_paired"] = balance
        t["balancedness_layers"] = layer_rows(chosen, order, baseline, columns)
    return t


def _closing(notes: list[str] | None, provenance: list[str]) -> list[str]:
    """report.md's end: the kept adapters, then who made it from which code, folded."""
    md = []
    if notes is not None:
        md += [
            f"## Kept adapters ({len(notes)}: each method's dev-chosen setting)",
            "",
            "Each is a `--save-adapter` folder; the command reproduces it.",
            "",
            *notes,
            "",
        ]
    if provenance:
        md += [
            "<details markdown>",
            "<summary>Provenance</summary>",
            "",
            *(x for line in provenance for x in (line, "")),
            "</details>",
            "",
        ]
    return md


def _markdown(
    results: list[RunRecord],
    t: dict,
    columns: list[str],
    *,
    reference_method: str,
    head: list[str],
    plot: str | None = None,
    title: str = "Report",
) -> list[str]:
    """report.md's head (title, protocol, then the paired plot) and its always-present
    tables."""
    md = [
        f"# {title}",
        "",
        *(x for line in head for x in (line, "")),
        *([plot, ""] if plot else []),
        f"{len(results)} runs. {_scale_note(results)}, mean ± std over seeds (number of seeds), "
        "for each method's hyperparameters chosen on the dev split. Majority class: the most "
        "frequent training label (ties: the lowest label id) predicted for every test example.",
        "",
        _describe(results, columns),
        "",
        markdown_table(t["table1"]),
        "",
        "## Final mean |B| over LoRA pairs (selected runs)",
        "",
        markdown_table(t["balancedness"]),
        "",
        "## Chosen hyperparameters",
        "",
        markdown_table(t["selection"]),
        "",
        f"## Per-iteration time, normalized to {LABELS.get(reference_method, reference_method)}",
        "",
        markdown_table(t["runtime"]),
        "",
        "## Every setting (mean over its seeds)",
        "",
        markdown_table(t["settings"]),
        "",
    ]
    if "metrics" in t:
        md += [
            "## Every metric of every task (selected runs; mean ± std over seeds)",
            "",
            markdown_table(t["metrics"]),
            "",
        ]
    if "webnlg" in t:
        md += [
            "## WebNLG BLEU (sacrebleu, all references), mean ± std over seeds",
            "",
            markdown_table(t["webnlg"]),
            "",
        ]
    return md


def _scale_note(results: list[RunRecord]) -> str:
    """What the test numbers are, from the metrics' declarations: x100, or as they are."""
    from .naming import metric_scale

    metrics = sorted({r["primary_metric"] for r in results})
    as_is = [m for m in metrics if metric_scale(m) == 1.0]
    if not as_is:
        return f"Test {', '.join(metrics)} (×100)"
    if len(as_is) == len(metrics):
        return f"Test {', '.join(metrics)} (as recorded)"
    return f"Test {', '.join(metrics)} (×100; {', '.join(as_is)} as recorded)"


def _verdict_note(verdicts: list[list[str]]) -> str:
    """The rule in one paragraph, with the count of intervals and what Holm's rule changed."""
    col = {c: i for i, c in enumerate(verdicts[0])}
    rows = verdicts[1:]
    margin = rows[0][col["margin"]]
    note = (
        f"Verdicts (margin ±{margin} points): better / worse: the interval excludes 0; "
        f"equivalent: it lies within ±{margin}; identical: every paired difference is 0; "
        "inconclusive: it covers 0 and reaches past the margin (it cannot tell); decided "
        "on the unrounded interval."
    )
    family = holm_family(verdicts)
    if family > 1:
        lost = [f"{r[0]} {r[1]}" for r in rows if r[col["verdict"]] != r[col["verdict_holm"]]]
        note += (
            f" {family} intervals are computed here; `verdict_holm` keeps a better or "
            f"worse only if it survives Holm's adjustment over all {family} (`p_holm`; one "
            "that does not is equivalent if it lies within the margin, else inconclusive; "
            "equivalence is not adjusted)"
        )
        note += (
            "; not surviving it: " + ", ".join(lost) + "." if lost else "; every one survives it."
        )
    return note


def _sections(
    results: list[RunRecord],
    verdicts: list,
    balance: list,
    *,
    baseline: str,
    failed: list[str],
    skipped: list[str],
) -> list[str]:
    """report.md's sections that appear when they have something to say: the paired
    differences, balancedness, ties on dev, failed runs, skipped files."""
    md: list[str] = []
    name = LABELS.get(baseline, baseline)
    if len(verdicts) > 1:
        md += [
            f"## Paired differences to {name} (test, 95% t-interval over seeds)",
            "",
            "Same seed = same split, initialization and data order; each method at its "
            "dev-chosen setting. " + _verdict_note(verdicts),
            "",
            markdown_table(verdicts),
            "",
        ]
    edges = edge_lines(results)
    if edges:
        md += (
            [
                f"## Choices at the edge of their grid ({len(edges)})",
                "",
                "The dev-chosen value is the smallest or largest value tried: the best setting "
                "may lie outside the grid.",
                "",
            ]
            + [f"- {line}" for line in edges]
            + [""]
        )
    if len(balance) > 1:
        md += [
            f"## Balancedness relative to {name} (paired over seeds)",
            "",
            "Percent difference of the mean |B| over LoRA pairs, final and averaged over "
            "the logged steps, each method at its dev-chosen setting against the baseline's "
            "run of the same seed; n seeds, 95% t-interval. Per layer: "
            "`balancedness_layers.csv`.",
            "",
            markdown_table(balance),
            "",
        ]
    return md + _listings(results, failed, skipped)


def _listings(results: list[RunRecord], failed: list[str], skipped: list[str]) -> list[str]:
    """report.md's lists, where there is something to list: ties on dev, failed runs, skipped
    files."""
    md: list[str] = []
    ties = select_with_ties(results)[1]
    if ties:
        md += [f"## Ties on dev ({len(ties)})", "", f"Rule: {TIE_RULE}.", ""]
        md += [
            f"- {t['task']} / {label_of(t['method'])}: {' | '.join(t['settings'])} -> "
            f"**{t['chosen']}** (by {t['by']})"
            for t in ties
        ] + [""]
    if failed:
        md += (
            [f"## Failed runs ({len(failed)}: a non-finite metric; not selected or averaged)", ""]
            + [f"- {m}" for m in failed]
            + [""]
        )
    if skipped:
        md += [f"## Skipped files ({len(skipped)}: --skip-bad, or altered)", ""]
        md += [f"- {m}" for m in skipped]
        md += [""]
    return md
