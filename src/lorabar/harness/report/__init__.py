"""Tables and figures from a folder of result files (``lorabar report DIR``).

The stages, one module each: `.load` (read and check the files, comparability),
`.selection` (dev selection and its tie rule), `.paired` (paired intervals),
`.tables`, `.figures`, `.write` (write the folder: `render()`); `.naming` orders
and labels tasks and methods.

* Table 1 analog: tasks x methods, test metric mean ± std over seeds, for each method's
  hyperparameters chosen on **dev** (mean dev metric over seeds); with the final mean |B| per
  method, the majority-class reference and full finetuning where present (markdown and CSV).
* Runtime table: median per-iteration time per method, normalized to LoRA on the same task
  (paper Tables 2/7), from the same runs.
* Fig. 3 analog: |B_l| over steps for the first, middle and last query layers, LoRA vs SAM vs
  nBAR (PNG per task).

What is read and compared (`load()`, `check_comparable()`): exactly the result files of
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

from .figures import fig3
from .load import (
    MIXED_HINT,
    REQUIRED,
    TUNED,
    AlteredResultError,
    BadResultError,
    check_comparable,
    in_context,
    load,
    load_results,
    result_files,
    split_failed,
)
from .naming import LABELS, METHOD_ORDER, TASK_ORDER, task_order
from .paired import average_over_tasks, paired
from .write import render
from .selection import TIE_RULE, select, select_with_ties
from .tables import tables

__all__ = [
    "LABELS",
    "METHOD_ORDER",
    "MIXED_HINT",
    "REQUIRED",
    "TASK_ORDER",
    "TIE_RULE",
    "TUNED",
    "AlteredResultError",
    "BadResultError",
    "average_over_tasks",
    "check_comparable",
    "fig3",
    "in_context",
    "load",
    "load_results",
    "paired",
    "render",
    "result_files",
    "select",
    "select_with_ties",
    "split_failed",
    "tables",
    "task_order",
]
