"""Run configurations: one validated set of shared fields, one extension per task kind.

`RunConfig` holds what every run has (task, method, seed, steps, lr, batch size, schedule,
rho, mu0, device, precision, ...); `EncoderConfig` (``kind = "encoder"``: classification
and regression heads on an encoder) and `LMConfig` (``kind = "lm"``: prompt scoring and
WebNLG generation on a causal LM) add their own fields and defaults.  Every field is checked on
construction, with the name of the flag in the message.

`RunConfig.key()` is the config part of a run's identity: the rule is
`lorabar.harness.run.config_key`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ... import _validate as _v
from ..._names import DEFAULT_MU0, DEFAULT_SCHEDULE
from ..tasks.data_folder import TASKS
from .config_key import CUSTOM, key_of
from .registry import (
    LORAPLUS_BARS,
    DEVICES,
    HEADS,
    METHODS,
    PERTURBATIONS,
    POOLINGS,
    PRECISIONS,
    SCHEDULES,
    SETTINGS,
    TARGETS,
    methods_for,
)

__all__ = ["CONFIGS", "EncoderConfig", "LMConfig", "RunConfig", "about", "config_from", "help_of"]

TASK_TYPES = ("classification", "regression")
LM_METRICS = ("nll", "bleu")


def about(default: Any, text: str) -> Any:
    """A config field with its help beside it (``--help`` of every command that takes it)."""
    return field(default=default, metadata={"help": text})


def help_of(cls: type, name: str) -> str | None:
    """The help of field ``name`` of config class ``cls`` (a subclass that only changes the
    default keeps its parent's help)."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and "help" in f.metadata:
            return f.metadata["help"]
    return None


@dataclass(frozen=True)
class RunConfig:
    """The fields every run shares (use `EncoderConfig` or `LMConfig`)."""

    kind: ClassVar[str] = ""
    TASKS: ClassVar[tuple[str, ...]] = ()

    task: str = "sst2"
    method: str = "lora"
    seed: int = about(13, "the seed of the split (few-shot), the initialization and the data order")
    steps: int = about(300, "optimizer steps")
    lr: float = about(1e-3, "learning rate (AdamW, linear decay)")
    batch_size: int = about(16, "training batch size")
    max_length: int = about(128, "tokens per example (longer ones truncated)")
    weight_decay: float = about(0.0, "AdamW weight decay")
    warmup_ratio: float = about(0.0, "linear warm-up over this fraction of the steps")
    rho: float = about(0.05, "SAM's (and sBAR's) radius")
    mu0: float = about(DEFAULT_MU0, "BAR's rate: alpha_t = mu0 * schedule(t)")
    schedule: str = about(DEFAULT_SCHEDULE, "BAR's alpha_t schedule: constant | linear | cosine")
    sam_perturbation: str = about(
        "sync",
        "under torchrun: 'sync' (SAM on the global batch) or "
        "'per_rank' (m-sharpness, m = world size)",
    )
    loraplus_ratio: float = about(16.0, "LoRA+: lr of B / lr of A")
    bar: str = about(
        "none",
        "with --method loraplus: BAR on top, none | obar | nbar | sbar (each "
        "pair's rate is sqrt(lr_A lr_B); obar/nbar read --mu0/--schedule, "
        "sbar --rho)",
    )
    model: str = about(
        "minilm",
        "encoder: 'minilm' (default), 'tiny', or a HF path/id; lm: "
        "'smollm2' (default), 'tiny', or a HF path/id",
    )
    lora_r: int = about(8, "LoRA rank")
    lora_alpha: int = about(16, "LoRA alpha (the update is scaled by alpha / r)")
    device: str = about("auto", "auto (CUDA if available, else CPU) | cpu | cuda | cuda:N")
    precision: str = about(
        "auto",
        "auto (bf16 where the hardware does it natively, "
        "fp16+GradScaler on CUDA without bf16, else fp32) | fp32 | "
        "bf16 | fp16; parameters stay fp32",
    )
    log_every: int = about(
        0,
        "log |B| of every LoRA pair every this many steps (0: about 50 "
        "points per run, steps // 50)",
    )
    eval_batch_size: int = about(
        64, "evaluation batch size (part of the identity: padding changes the probe head)"
    )
    threads: int = about(0, "torch threads (0: torch's default)")
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
        self._check_int("log_every", 0)
        for name in (
            "steps",
            "batch_size",
            "max_length",
            "eval_batch_size",
            "lora_r",
            "lora_alpha",
        ):
            self._check_int(name, 1)
        for name in ("lr", "rho", "mu0", "weight_decay"):
            _v.number(name, getattr(self, name), flag=_v.flag_of(name))
        _v.number("loraplus_ratio", self.loraplus_ratio, strict=True, flag="--loraplus-ratio")
        _v.number("warmup_ratio", self.warmup_ratio, high=1, flag="--warmup-ratio")
        self._check_choices()
        if method.check is not None:  # the method's own checks, from its registry entry
            method.check(self, self.lr, f"--method {self.method}")
        on_top = METHODS.get(self.bar)
        if on_top is not None and on_top.check is not None:
            # on LoRA+, a pair's rate is sqrt(lr_A lr_B) = lr sqrt(ratio)
            on_top.check(self, self.lr * math.sqrt(self.loraplus_ratio), f"--bar {self.bar}")

    def _check_choices(self) -> None:
        """Each setting with a fixed set of values has one of them."""
        if self.schedule not in SCHEDULES:
            raise _v.choice("schedule", self.schedule, SCHEDULES)
        if self.sam_perturbation not in PERTURBATIONS:
            raise _v.choice("sam_perturbation", self.sam_perturbation, PERTURBATIONS)
        if not isinstance(self.device, str) or not re.fullmatch(
            r"auto|cpu|cuda(:\d+)?", self.device
        ):
            raise ValueError(f"Invalid device: {self.device!r} (expected {DEVICES})")
        if self.precision not in PRECISIONS:
            raise _v.choice("precision", self.precision, PRECISIONS)
        if self.bar not in LORAPLUS_BARS:
            raise _v.choice("bar", self.bar, LORAPLUS_BARS)
        if self.bar != "none" and self.method != "loraplus":
            raise ValueError(
                f"Invalid bar: {self.bar!r} (--bar combines BAR with --method "
                "loraplus; for plain LoRA use --method obar, nbar or sbar)"
            )

    def _check_int(self, name: str, low: int) -> None:
        _v.integer(name, getattr(self, name), low, flag=_v.flag_of(name))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def key(self) -> dict:
        """The config part of the run's identity (`lorabar.harness.run.config_key.key_of`)."""
        return key_of(self)


# staged tasks whose examples are pairs of texts
PAIR_TASKS = tuple(t for t, v in TASKS.items() if v.row(["x"] * 20)[1] is not None)


@dataclass(frozen=True)
class EncoderConfig(RunConfig):
    """An encoder run (MiniLM by default): a pooled linear head on LoRA-adapted layers."""

    kind: ClassVar[str] = "encoder"
    TASKS: ClassVar[tuple[str, ...]] = (*TASKS, CUSTOM)

    pooling: str = about("mean", "mean | cls")
    targets: str = about("qv", "LoRA targets: qv (query, value) | all (every linear layer)")
    setting: str = about("fewshot", "fewshot (k=512 splits) | full (GLUE)")
    max_eval: int = about(
        0, "evaluate on a seeded, class-stratified subset of this many dev/test examples (0: all)"
    )
    head: str = about(
        "probe",
        "probe (fitted on frozen features, then frozen: only LoRA adapts) "
        "| linear (trained with the adapters) | prompt (the masked LM's "
        "head through a template)",
    )
    label_noise: float = about(
        0.0, "a seeded fraction of the training labels flipped to another class"
    )
    # the user's own data (task "custom"): files, columns, task type
    # (lorabar.harness.tasks.own_data)
    train: str | None = about(
        None,
        "your own data: the train file (.csv .tsv .jsonl .json "
        ".parquet or a datasets.save_to_disk folder); with --dev, "
        "--test, --text-column, --label-column (task 'custom')",
    )
    dev: str | None = about(None, "your own data: the dev file (selection)")
    test: str | None = about(None, "your own data: the test file (reporting)")
    text_column: str | None = about(None, "your own data: the column with the text")
    text_pair_column: str | None = about(
        None, "your own data: the column with the second text of a pair"
    )
    label_column: str | None = about(
        None, "your own data: the label column (classes: strings or integers)"
    )
    task_type: str = about("classification", "your own data: classification | regression")
    numeric_labels: bool = about(
        False,
        "your own data: labels that are one number written two "
        "ways (1 and 1.0, 01 and 1) are one class; without it "
        "they are refused, naming both lines",
    )
    template: str | None = about(
        None,
        "--head prompt: your template (one {mask}, one {text}; "
        "{text_pair} for pairs); default: MeZO's for the task",
    )
    verbalizer: str | None = about(
        None, "--head prompt: the label words, comma-separated in label order"
    )
    # start RTE, MRPC and STS-B from their MNLI adapter); the task head starts fresh
    init_adapter: str | None = about(
        None,
        "start the LoRA factors from a saved adapter "
        "(--save-adapter of an earlier run); the head starts "
        "fresh",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_adapter is not None and not (
            METHODS[self.method].adapters and METHODS[self.method].trains
        ):
            raise ValueError(
                f"Invalid init_adapter: method {self.method!r} trains no LoRA "
                "adapter to start from it"
            )
        if self.init_adapter is not None and self.head == "prompt":
            raise ValueError(
                "Invalid init_adapter: --head prompt adapts the masked LM; start "
                "from an adapter with --head probe or linear"
            )
        if self.head not in HEADS:
            raise _v.choice("head", self.head, HEADS, "--head")
        if self.method == "zeroshot" and self.head == "linear":
            raise ValueError(
                "Invalid method: 'zeroshot' on an encoder evaluates the probe head "
                "alone; it needs --head probe"
            )
        self._check_prompt()
        _v.number("label_noise", self.label_noise, high=1, flag="--label-noise")
        if self.label_noise and self.task in TASKS and TASKS[self.task].is_regression:  # staged
            raise ValueError(
                f"Invalid label_noise: task {self.task!r} is a regression task "
                "(label noise flips class labels)"
            )
        if self.pooling not in POOLINGS:
            raise _v.choice("pooling", self.pooling, POOLINGS)
        if self.targets not in TARGETS:
            raise _v.choice("targets", self.targets, TARGETS)
        if self.setting not in SETTINGS:
            raise _v.choice("setting", self.setting, SETTINGS)
        self._check_int("max_eval", 0)
        if self.task_type not in TASK_TYPES:
            raise _v.choice("task_type", self.task_type, TASK_TYPES, "--task-type")
        self._check_own_data()

    def _check_own_data(self) -> None:
        """Task ``custom`` needs its files and distinct columns; a staged task takes none."""
        own = {k: getattr(self, k) for k in ("train", "dev", "test", "text_column", "label_column")}
        if self.task == CUSTOM:
            missing = [_v.flag_of(k) for k, v in own.items() if not v]
            if missing:
                raise ValueError(
                    f"Invalid task: 'custom' (your own data) needs {', '.join(missing)}"
                )
            _v.distinct_columns(
                text_column=self.text_column,
                label_column=self.label_column,
                text_pair_column=self.text_pair_column,
            )
            if self.setting != "fewshot":
                raise ValueError(
                    "Invalid setting: 'full' reads the staged GLUE files; with your "
                    "own data leave --setting alone"
                )
            if self.label_noise and self.task_type == "regression":
                raise ValueError("Invalid label_noise: a regression task has no classes to flip")
        elif any(v for v in own.values()) or self.text_pair_column:
            raise ValueError(
                f"Invalid task: {self.task!r} is a staged task; --train/--dev/--test "
                "and the column flags go with task 'custom' (your own data)"
            )

    def _check_prompt(self) -> None:
        """--head prompt: a template and verbalizer exist and fit the task."""
        from ..tasks.mlm_templates import MEZO_TEMPLATES, check_template, parse_verbalizer

        if self.head != "prompt":
            if self.template or self.verbalizer:
                raise ValueError(
                    "Invalid template: --template and --verbalizer go with --head prompt"
                )
            return
        if (self.template is None) != (self.verbalizer is None):
            raise ValueError("Invalid template: give --template and --verbalizer together")
        if self.template is None and self.task not in MEZO_TEMPLATES:
            raise ValueError(
                "Invalid head: 'prompt' has no built-in template for task "
                f"{self.task!r} (MeZO's: {sorted(MEZO_TEMPLATES)}); give --template "
                "and --verbalizer"
            )
        if self.task_type == "regression":
            raise ValueError(
                "Invalid head: 'prompt' scores classes; a regression task needs "
                "--head probe or linear"
            )
        if self.verbalizer is not None:
            parse_verbalizer(self.verbalizer)
            if "{" not in self.template and "*mask*" not in self.template:
                raise ValueError(f"Invalid --template: {self.template!r} has no {{mask}}")
            if "{" in self.template:
                pair = (
                    bool(self.text_pair_column) if self.task == CUSTOM else self.task in PAIR_TASKS
                )
                check_template(self.template, pair=pair)
        if self.method == "full":
            raise ValueError(
                "Invalid method: 'full' trains every weight; --head prompt adapts the "
                "LoRA factors only"
            )


@dataclass(frozen=True)
class LMConfig(RunConfig):
    """A causal-LM run (SmolLM2-135M by default): prompt tasks or WebNLG; ``n_*`` = 0 uses the
    whole split."""

    kind: ClassVar[str] = "lm"
    TASKS: ClassVar[tuple[str, ...]] = (
        "sst2",
        "rte",
        "cb",
        "copa",
        "record",
        "squad",
        "webnlg",
        "synthetic",
        CUSTOM,
    )

    task: str = "cb"
    steps: int = 100
    lr: float = 1e-4
    batch_size: int = 8
    max_length: int = 256
    model: str = "smollm2"
    eval_batch_size: int = 8
    label_smoothing: float = about(0.0, "label smoothing of the training loss")
    n_train: int = about(0, "training examples (0: all)")
    n_dev: int = about(200, "dev examples (0: all)")
    n_test: int = about(0, "test examples (0: all)")
    max_new_tokens: int = about(64, "generation: new tokens at most")
    num_beams: int = about(1, "generation: beams")
    length_penalty: float = about(0.8, "generation: beam length penalty")
    num_virtual_tokens: int = about(5, "prefix tuning: the prefix length (MeZO's 5)")
    # your own prompt/completion data (task "custom"; lorabar.harness.tasks.lm_tasks.SFTTask)
    train: str | None = about(None, "your own data (finetune-lm): the train file")
    dev: str | None = about(None, "your own data (finetune-lm): the dev file")
    test: str | None = about(None, "your own data (finetune-lm): the test file")
    prompt_column: str | None = about(
        None, "your own data (finetune-lm): the prompt column; the loss is on the completion only"
    )
    completion_column: str | None = about(
        None, "your own data (finetune-lm): the completion column"
    )
    metric: str = about(
        "nll", "your own data (finetune-lm): nll (per completion token) | bleu (of generations)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metric not in LM_METRICS:
            raise _v.choice("metric", self.metric, LM_METRICS, "--metric")
        own = {
            k: getattr(self, k)
            for k in ("train", "dev", "test", "prompt_column", "completion_column")
        }
        if self.task == CUSTOM:
            missing = [_v.flag_of(k) for k, v in own.items() if not v]
            if missing:
                raise ValueError(
                    f"Invalid task: 'custom' (your own data) needs {', '.join(missing)}"
                )
            _v.distinct_columns(
                prompt_column=self.prompt_column, completion_column=self.completion_column
            )
            if self.metric == "bleu" and self.model == "tiny":
                raise ValueError(
                    "Invalid metric: 'bleu' generates text, and model 'tiny' has no tokenizer"
                )
        elif any(v for v in own.values()):
            raise ValueError(
                f"Invalid task: {self.task!r} is a staged task; --train/--dev/--test "
                "and the column flags go with task 'custom' (your own data)"
            )
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
        raise ValueError(
            "Invalid settings: 'bf16' was removed in lorabar 0.2; write "
            'precision = "bf16" (or --precision bf16) instead'
        )
    cls = CONFIGS[kind]
    unknown = set(settings) - set(cls.field_names())
    if unknown:
        raise ValueError(f"Invalid settings for kind {kind!r}: unknown {sorted(unknown)}")
    return cls(**settings)
