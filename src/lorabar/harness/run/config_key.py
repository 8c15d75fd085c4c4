"""The config part of a run's identity: `key_of()`, every field that changes training or
evaluation.

`key_of()` (`RunConfig.key()`) is the config part of a run's identity
([`lorabar.harness.run.identity`][lorabar.harness.run.identity], which adds the resolved device kind
and precision and the
content hashes of the data and model files): every field that changes training or evaluation.
Left out, because they provably do not change the result or are replaced by what they resolve to:

* ``device``, ``precision`` -- the identity holds their resolved values instead (``auto`` is not a
  result-defining value: it resolves differently on different machines);
* ``data_dir`` and the own-data paths ``train``/``dev``/``test`` -- the identity holds the
  content hashes of the files read instead;
* ``log_every`` -- only when |B| is logged (a read of the factors; training is unchanged);
* ``threads`` -- the identity holds the resolved torch thread count instead (on the CPU it
  changes the float reduction order: a 10-step MiniLM SST-2 run ends at mean |B| 1.3272844 with
  1 thread and 1.3272787 with 2, on a 2-core AMD EPYC in bf16);
* the method hyperparameters the method does not read (the registry says which:
  each method's ``hparams`` in `lorabar.harness.run.registry`) and, for methods that do not
  train, the training fields.

``eval_batch_size`` is part of it: the batch's padding changes the features the probe head is
fitted on, hence the head, the training and the final |B|.
"""

from __future__ import annotations

from dataclasses import asdict

from .registry import METHODS

__all__ = ["CUSTOM", "OWN_DATA_COLUMNS", "key_of"]

# not part of the identity (see the module docstring)
NOT_KEY = (
    "data_dir",
    "threads",
    "log_every",
    "device",
    "precision",  # see the docstring
    "numeric_labels",
)  # changes no run that exists without it (a collision is refused)
# the identity holds their content hashes instead (init_adapter: as "init")
PATHS = ("train", "dev", "test", "init_adapter")
CUSTOM = "custom"  # the task name of the user's own data
# how a task of your own data reads its files (the identity holds what they name instead)
OWN_DATA_COLUMNS = (
    "text_column",
    "text_pair_column",
    "label_column",
    "task_type",
    "prompt_column",
    "completion_column",
)
# what only training reads: not part of a non-training method's identity
TRAINING = ("steps", "lr", "weight_decay", "warmup_ratio", "label_smoothing")
METHOD_HPARAMS = tuple(sorted({h for m in METHODS.values() for h in m.hparams}))


def key_of(cfg) -> dict:
    """The config part of the identity of run config ``cfg`` (see the module docstring)."""
    method = METHODS[cfg.method]
    d = asdict(cfg)
    for k in NOT_KEY + PATHS:
        d.pop(k, None)
    if d.get("task") != CUSTOM:
        for k in (*OWN_DATA_COLUMNS, "metric"):
            d.pop(k, None)
    if d.get("head") != "prompt":
        for k in ("template", "verbalizer"):
            d.pop(k, None)
    reads = method.reads(cfg)  # its own settings; LoRA+ with BAR: the BAR's too
    for k in (*METHOD_HPARAMS, "bar"):
        if k not in reads:
            d.pop(k, None)
    if d.get("sam_perturbation") == "sync":  # the default: run ids as before it existed
        d.pop("sam_perturbation")
    if not method.trains:
        for k in TRAINING:
            d.pop(k, None)
    return d
