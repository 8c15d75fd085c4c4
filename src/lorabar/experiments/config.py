"""Run configurations: one validated set of shared fields, one extension per task kind.

:class:`RunConfig` holds what every run has (task, method, seed, steps, lr, batch size, schedule,
rho, mu0, device, precision, ...); :class:`EncoderConfig` (``kind = "encoder"``: classification
and regression heads on an encoder) and :class:`LMConfig` (``kind = "lm"``: prompt scoring and
WebNLG generation on a causal LM) add their own fields and defaults.  Every field is checked on
construction, with the name of the flag in the message.

:meth:`RunConfig.key` is the config part of a run's identity
(:mod:`lorabar.experiments.identity`, which adds the resolved device kind and precision and the
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
  :attr:`lorabar.experiments.registry.Method.hparams`) and, for methods that do not train,
  the training fields.

``eval_batch_size`` is part of it: the batch's padding changes the features the probe head is
fitted on, hence the head, the training and the final |B|.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from .. import _validate as _v
from .._names import DEFAULT_MU0, DEFAULT_SCHEDULE
from .data import TASKS
from .registry import (BAR_MODES, DEVICES, HEADS, METHODS, PERTURBATIONS, POOLINGS, PRECISIONS,
                       SCHEDULES, SETTINGS, TARGETS, check_bar_rate, methods_for)

__all__ = ["CONFIGS", "EncoderConfig", "LMConfig", "RunConfig", "config_from"]

# not part of the identity (see the module docstring)
_NOT_KEY = ("data_dir", "threads", "log_every", "device", "precision")  # see the docstring
# the identity holds their content hashes instead (init_adapter: as "init")
_PATHS = ("train", "dev", "test", "init_adapter")
CUSTOM = "custom"  # the task name of the user's own data
TASK_TYPES = ("classification", "regression")
LM_METRICS = ("nll", "bleu")
# what only training reads: not part of a non-training method's identity
_TRAINING = ("steps", "lr", "weight_decay", "warmup_ratio", "label_smoothing")
_METHOD_HPARAMS = tuple(sorted({h for m in METHODS.values() for h in m.hparams}))


@dataclass(frozen=True)
class RunConfig:
    """The fields every run shares (use :class:`EncoderConfig` or :class:`LMConfig`)."""

    kind: ClassVar[str] = ""
    TASKS: ClassVar[tuple[str, ...]] = ()

    task: str = "sst2"
    method: str = "lora"
    seed: int = 13
    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 16
    max_length: int = 128
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    rho: float = 0.05
    mu0: float = DEFAULT_MU0         # one set of BAR defaults (lorabar._names)
    schedule: str = DEFAULT_SCHEDULE
    sam_perturbation: str = "sync"   # under torchrun: "sync" or "per_rank" (lorabar.distributed)
    loraplus_ratio: float = 16.0     # LoRA+: lr of B / lr of A
    bar: str = "none"                # LoRA+ with BAR on top: "obar" | "nbar" | "sbar"
    model: str = "minilm"
    lora_r: int = 8
    lora_alpha: int = 16
    device: str = "auto"
    precision: str = "auto"
    log_every: int = 25
    eval_batch_size: int = 64
    threads: int = 0
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if type(self) is RunConfig:
            raise TypeError("RunConfig holds the shared fields: use EncoderConfig or LMConfig")
        if self.task not in self.TASKS:
            raise _v.choice("task", self.task, sorted(self.TASKS))
        if self.method not in methods_for(self.kind):
            raise _v.choice("method", self.method, methods_for(self.kind))
        method = METHODS[self.method]
        for name in ("seed", "threads"):
            self._check_int(name, 0)
        for name in ("steps", "batch_size", "max_length", "log_every", "eval_batch_size",
                     "lora_r", "lora_alpha"):
            self._check_int(name, 1)
        for name in ("lr", "rho", "mu0", "weight_decay"):
            _v.number(name, getattr(self, name), flag=_v.flag_of(name))
        _v.number("loraplus_ratio", self.loraplus_ratio, strict=True,
                  flag="--loraplus-ratio")
        _v.number("warmup_ratio", self.warmup_ratio, high=1, flag="--warmup-ratio")
        if self.schedule not in SCHEDULES:
            raise _v.choice("schedule", self.schedule, SCHEDULES)
        if self.sam_perturbation not in PERTURBATIONS:
            raise _v.choice("sam_perturbation", self.sam_perturbation, PERTURBATIONS)
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"Invalid device: {self.device!r} (expected {DEVICES})")
        if self.precision not in PRECISIONS:
            raise _v.choice("precision", self.precision, PRECISIONS)
        if self.bar not in BAR_MODES:
            raise _v.choice("bar", self.bar, BAR_MODES)
        if self.bar != "none" and self.method != "loraplus":
            raise ValueError(f"Invalid bar: {self.bar!r} (--bar combines BAR with --method "
                             "loraplus; for plain LoRA use --method obar, nbar or sbar)")
        if "mu0" in method.hparams:
            check_bar_rate(self.mu0, self.lr)
        if self.bar in ("obar", "nbar"):  # the pair's rate is sqrt(lr_A lr_B) = lr sqrt(ratio)
            check_bar_rate(self.mu0, self.lr * math.sqrt(self.loraplus_ratio))
        if self.bar == "sbar" and self.rho == 0:
            raise ValueError("Invalid rho: 0 (--bar sbar needs --rho > 0, SAM's radius)")
        if self.method == "sbar" and self.rho == 0:
            raise ValueError("Invalid rho: 0 (--method sbar needs --rho > 0, SAM's radius)")

    def _check_int(self, name: str, low: int) -> None:
        _v.integer(name, getattr(self, name), low, flag=_v.flag_of(name))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def key(self) -> dict:
        """The config part of the run's identity (see the module docstring)."""
        method = METHODS[self.method]
        d = asdict(self)
        for k in _NOT_KEY + _PATHS:
            d.pop(k, None)
        if d.get("task") != CUSTOM:
            for k in ("text_column", "text_pair_column", "label_column", "task_type",
                      "prompt_column", "completion_column", "metric"):
                d.pop(k, None)
        if d.get("head") != "prompt":
            for k in ("template", "verbalizer"):
                d.pop(k, None)
        reads = method.reads(self)  # its own settings; LoRA+ with BAR: the BAR's too
        for k in (*_METHOD_HPARAMS, "bar"):
            if k not in reads:
                d.pop(k, None)
        if d.get("sam_perturbation") == "sync":  # the default: run ids as before it existed
            d.pop("sam_perturbation")
        if not method.trains:
            for k in _TRAINING:
                d.pop(k, None)
        return d


def _distinct_columns(**columns: str | None) -> None:
    """Each column flag names its own column (a text column that is the label column would
    train on the answer)."""
    seen: dict[str, str] = {}
    for name, column in columns.items():
        if column is None:
            continue
        if column in seen:
            raise ValueError(f"Invalid {_v.flag_of(name)}: {column!r} is also "
                             f"{_v.flag_of(seen[column])}; each role needs its own column")
        seen[column] = name


# staged tasks whose examples are pairs of texts
PAIR_TASKS = tuple(t for t, v in TASKS.items() if v.row(["x"] * 20)[1] is not None)


@dataclass(frozen=True)
class EncoderConfig(RunConfig):
    """An encoder run (MiniLM by default): a pooled linear head on LoRA-adapted layers."""

    kind: ClassVar[str] = "encoder"
    TASKS: ClassVar[tuple[str, ...]] = (*TASKS, CUSTOM)

    pooling: str = "mean"
    targets: str = "qv"
    setting: str = "fewshot"
    max_eval: int = 0                # a seeded, class-stratified subset of dev and test (0: all)
    head: str = "probe"              # "probe": fitted on frozen features, then frozen; "linear"
    label_noise: float = 0.0         # a seeded fraction of train labels flipped to another class
    # the user's own data (task "custom"): files, columns, task type (lorabar.experiments.userdata)
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    task_type: str = "classification"
    # --head prompt: your own template and verbalizer (default: MeZO's for the staged task)
    template: str | None = None
    verbalizer: str | None = None
    # start the LoRA factors from a saved adapter (--save-adapter of an earlier run; Hu et al.
    # start RTE, MRPC and STS-B from their MNLI adapter); the task head starts fresh
    init_adapter: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_adapter is not None and not (METHODS[self.method].adapters
                                                  and METHODS[self.method].trains):
            raise ValueError(f"Invalid init_adapter: method {self.method!r} trains no LoRA "
                             "adapter to start from it")
        if self.init_adapter is not None and self.head == "prompt":
            raise ValueError("Invalid init_adapter: --head prompt adapts the masked LM; start "
                             "from an adapter with --head probe or linear")
        if self.head not in HEADS:
            raise _v.choice("head", self.head, HEADS, "--head")
        if self.method == "zeroshot" and self.head == "linear":
            raise ValueError("Invalid method: 'zeroshot' on an encoder evaluates the probe head "
                             "alone; it needs --head probe")
        self._check_prompt()
        _v.number("label_noise", self.label_noise, high=1, flag="--label-noise")
        if self.label_noise and self.task in TASKS and TASKS[self.task].is_regression:  # staged
            raise ValueError(f"Invalid label_noise: task {self.task!r} is a regression task "
                             "(label noise flips class labels)")
        if self.pooling not in POOLINGS:
            raise _v.choice("pooling", self.pooling, POOLINGS)
        if self.targets not in TARGETS:
            raise _v.choice("targets", self.targets, TARGETS)
        if self.setting not in SETTINGS:
            raise _v.choice("setting", self.setting, SETTINGS)
        self._check_int("max_eval", 0)
        if self.task_type not in TASK_TYPES:
            raise _v.choice("task_type", self.task_type, TASK_TYPES, "--task-type")
        own = {k: getattr(self, k) for k in ("train", "dev", "test", "text_column", "label_column")}
        if self.task == CUSTOM:
            missing = [_v.flag_of(k) for k, v in own.items() if not v]
            if missing:
                raise ValueError(f"Invalid task: 'custom' (your own data) needs {', '.join(missing)}")
            _distinct_columns(text_column=self.text_column, label_column=self.label_column,
                              text_pair_column=self.text_pair_column)
            if self.setting != "fewshot":
                raise ValueError("Invalid setting: 'full' reads the staged GLUE files; with your "
                                 "own data leave --setting alone")
            if self.label_noise and self.task_type == "regression":
                raise ValueError("Invalid label_noise: a regression task has no classes to flip")
        elif any(v for v in own.values()) or self.text_pair_column:
            raise ValueError(f"Invalid task: {self.task!r} is a staged task; --train/--dev/--test "
                             "and the column flags go with task 'custom' (your own data)")

    def _check_prompt(self) -> None:
        """--head prompt: a template and verbalizer exist and fit the task."""
        from .templates import MEZO_TEMPLATES, check_template, parse_verbalizer

        if self.head != "prompt":
            if self.template or self.verbalizer:
                raise ValueError("Invalid template: --template and --verbalizer go with --head prompt")
            return
        if (self.template is None) != (self.verbalizer is None):
            raise ValueError("Invalid template: give --template and --verbalizer together")
        if self.template is None and self.task not in MEZO_TEMPLATES:
            raise ValueError(f"Invalid head: 'prompt' has no built-in template for task {self.task!r} "
                             f"(MeZO's: {sorted(MEZO_TEMPLATES)}); give --template and --verbalizer")
        if self.task_type == "regression":
            raise ValueError("Invalid head: 'prompt' scores classes; a regression task needs "
                             "--head probe or linear")
        if self.verbalizer is not None:
            parse_verbalizer(self.verbalizer)
            if "{" not in self.template and "*mask*" not in self.template:
                raise ValueError(f"Invalid --template: {self.template!r} has no {{mask}}")
            if "{" in self.template:
                pair = bool(self.text_pair_column) if self.task == CUSTOM else \
                    self.task in PAIR_TASKS
                check_template(self.template, pair=pair)
        if self.method == "full":
            raise ValueError("Invalid method: 'full' trains every weight; --head prompt adapts the "
                             "LoRA factors only")


@dataclass(frozen=True)
class LMConfig(RunConfig):
    """A causal-LM run (SmolLM2-135M by default): prompt tasks or WebNLG; ``n_*`` = 0 uses the
    whole split."""

    kind: ClassVar[str] = "lm"
    TASKS: ClassVar[tuple[str, ...]] = ("sst2", "rte", "cb", "copa", "record", "squad",
                                         "webnlg", "synthetic", CUSTOM)

    task: str = "cb"
    steps: int = 100
    lr: float = 1e-4
    batch_size: int = 8
    max_length: int = 256
    model: str = "smollm2"
    eval_batch_size: int = 8
    label_smoothing: float = 0.0
    n_train: int = 0
    n_dev: int = 200
    n_test: int = 0
    max_new_tokens: int = 64
    num_beams: int = 1
    length_penalty: float = 0.8
    num_virtual_tokens: int = 5      # prefix tuning's prefix length (MeZO's 5)
    # your own prompt/completion data (task "custom"; lorabar.experiments.lm.SFTTask)
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    prompt_column: str | None = None
    completion_column: str | None = None
    metric: str = "nll"              # "nll" (per completion token) or "bleu" (of generations)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metric not in LM_METRICS:
            raise _v.choice("metric", self.metric, LM_METRICS, "--metric")
        own = {k: getattr(self, k) for k in ("train", "dev", "test", "prompt_column",
                                             "completion_column")}
        if self.task == CUSTOM:
            missing = [_v.flag_of(k) for k, v in own.items() if not v]
            if missing:
                raise ValueError(f"Invalid task: 'custom' (your own data) needs {', '.join(missing)}")
            _distinct_columns(prompt_column=self.prompt_column,
                              completion_column=self.completion_column)
            if self.metric == "bleu" and self.model == "tiny":
                raise ValueError("Invalid metric: 'bleu' generates text, and model 'tiny' has no "
                                 "tokenizer")
        elif any(v for v in own.values()):
            raise ValueError(f"Invalid task: {self.task!r} is a staged task; --train/--dev/--test "
                             "and the column flags go with task 'custom' (your own data)")
        _v.number("label_smoothing", self.label_smoothing, high=1, flag="--label-smoothing")
        for name in ("n_train", "n_dev", "n_test"):
            self._check_int(name, 0)
        for name in ("max_new_tokens", "num_beams", "num_virtual_tokens"):
            self._check_int(name, 1)
        _v.number("length_penalty", self.length_penalty, low=None, flag="--length-penalty")


CONFIGS: dict[str, type[RunConfig]] = {"encoder": EncoderConfig, "lm": LMConfig}


def config_from(settings: dict[str, Any], kind: str = "encoder") -> RunConfig:
    """A config of ``kind`` from a dict (a grid row, CLI flags)."""
    if kind not in CONFIGS:
        raise _v.choice("kind", kind, sorted(CONFIGS))
    settings = dict(settings)
    if settings.get("train") and "task" not in settings:
        settings["task"] = CUSTOM  # your own data
    if "bf16" in settings:
        raise ValueError("Invalid settings: 'bf16' was removed in lorabar 0.2; write "
                         "precision = \"bf16\" (or --precision bf16) instead")
    cls = CONFIGS[kind]
    unknown = set(settings) - set(cls.field_names())
    if unknown:
        raise ValueError(f"Invalid settings for kind {kind!r}: unknown {sorted(unknown)}")
    return cls(**settings)
