"""What a user chooses by name -- methods, task kinds, devices, precisions, heads, ... -- in one
place that imports no torch, so that ``lorabar --help``, the configs, the report and the docs all
read the same lists (and ``--help`` starts in a fraction of torch's import time).

A method is one `Method` entry here: what it reads, its label, its default tuning grid, and its
stepper builder as an import string (``"module:function"``, imported when a run builds its
stepper, as task adapters are), so that this module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import _names

__all__ = [
    "ADAPTERS",
    "BASELINE",
    "DEVICES",
    "HEADS",
    "LORAPLUS_BARS",
    "METHODS",
    "METRICS",
    "Method",
    "Metric",
    "metric",
    "PAPER_METHODS",
    "PERTURBATIONS",
    "POOLINGS",
    "PRECISIONS",
    "SCHEDULES",
    "SETTINGS",
    "TARGETS",
    "TASK_ADAPTERS",
    "check_bar_rate",
    "check_bar_settings",
    "check_sbar_settings",
    "methods_for",
    "methods_table",
]

SCHEDULES = _names.SCHEDULES
PERTURBATIONS = _names.PERTURBATIONS
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = "auto | cpu | cuda | cuda:N"
HEADS = ("probe", "linear", "prompt")
POOLINGS = ("mean", "cls")
TARGETS = ("qv", "all")
SETTINGS = ("fewshot", "full")
ADAPTERS = ("lora", "prefix", "none")
STEPPERS = "lorabar.harness.run.methods"

# (kind, task) or kind -> "module:class" of its task adapter (lorabar.harness.tasks.contract)
TASK_ADAPTERS = {
    "encoder": "lorabar.harness.tasks.encoder_task:EncoderTask",
    "lm": "lorabar.harness.tasks.lm_tasks:PromptTask",
    "lm/webnlg": "lorabar.harness.tasks.lm_tasks:WebNLGTask",
    "lm/squad": "lorabar.harness.tasks.lm_tasks:SquadTask",
    "lm/custom": "lorabar.harness.tasks.lm_tasks:SFTTask",
}


@dataclass(frozen=True)
class Method:
    """A registry entry.

    Args:
        name: the method's id (``--method``).
        label: its name in tables.
        description: one line for ``--help`` and the docs.
        trains: whether it trains.
        builder: ``"module:function"`` (or the function itself, for a method registered at run
            time) turning a ``StepContext`` into its ``Stepper``; ``None`` for a method that
            does not train.
        on_loraplus: whether LoRA+ can carry it on top (``--bar``: a rescaling of the pairs).
        check: its own check of a run's settings, ``check(config, rate, via)`` with ``rate``
            the pairs' learning rate and ``via`` how it was chosen (``"--method sbar"``), or
            ``None``.
        hparams: the config fields it reads besides the common ones (part of a run's identity).
        adapter: what the model gets: ``"lora"`` adapters (the pairs BAR and SAM act on),
            ``"prefix"`` (PEFT prefix tuning: trained key/value prefixes, no LoRA pairs) or
            ``"none"`` (full finetuning).
        kinds: the task kinds it applies to (``None``: every kind).
        curve: its place among the |B| curves of the report's Fig. 3 analog (``None``: not
            drawn; the paper's figure shows LoRA, SAM and the two BARs).
        tune: ``lorabar compare``'s default tuning grid for it (setting -> values).
        cost: its step time relative to LoRA's, for time estimates (SAM: two passes).
    """

    name: str
    label: str
    description: str
    trains: bool = True
    hparams: tuple[str, ...] = ()
    adapter: str = "lora"
    kinds: tuple[str, ...] | None = None
    curve: int | None = None
    tune: dict = field(default_factory=dict)
    cost: float = 1.0
    builder: object = None
    on_loraplus: bool = False
    check: object = None

    def __post_init__(self) -> None:
        if self.adapter not in ADAPTERS:
            raise ValueError(f"Invalid adapter: {self.adapter!r} (expected one of {ADAPTERS})")
        if self.trains != (self.builder is not None):
            raise ValueError(
                f"Invalid method {self.name!r}: a method that trains needs a "
                "builder, one that does not has none"
            )

    def reads(self, settings) -> tuple[str, ...]:
        """The settings a run of this method reads beyond the common ones, given its
        ``settings`` (a config or its dict): `hparams`, and for LoRA+ with BAR on top
        (``bar``) ``bar`` and what that method's own entry reads.  The one statement of it: the
        run key, dev selection's columns and the seed stage's grid all ask here."""
        get = (
            settings.get
            if isinstance(settings, dict)
            else (lambda k, d=None: getattr(settings, k, d))
        )
        bar = get("bar", "none")
        extra = (
            () if bar in (None, "none") or bar not in METHODS else ("bar",) + METHODS[bar].hparams
        )
        return self.hparams + tuple(k for k in extra if k not in self.hparams)

    @property
    def adapters(self) -> bool:
        """Whether the model gets LoRA adapters (and so has LoRA pairs)."""
        return self.adapter == "lora"


def check_bar_settings(config, rate: float, via: str) -> None:
    """oBAR and nBAR: the per-step factor ``mu0 * rate`` below 1 (`check_bar_rate`)."""
    check_bar_rate(config.mu0, rate)


def check_sbar_settings(config, rate: float, via: str) -> None:
    """sBAR: SAM's radius, which sets its rate, is positive."""
    if config.rho == 0:
        raise ValueError(f"Invalid rho: 0 ({via} needs --rho > 0, SAM's radius)")


def check_bar_rate(mu0: float, lr: float) -> None:
    """The harness's one statement of BAR's rule: the per-step factor ``mu0 * lr`` must be < 1
    (at the schedule's peak; [`lorabar.BAR`][lorabar.bar.BAR] checks every step itself)."""
    if mu0 * lr >= 1:
        raise ValueError(f"Invalid mu0: {mu0} (mu0 * lr = {mu0 * lr:g} must be < 1)")


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "zeroshot",
            "zero-shot",
            "no training: the pretrained model (encoders: the probe head alone) evaluated",
            trains=False,
            cost=0.0,
        ),
        Method(
            "lora",
            "LoRA",
            "LoRA adapters trained with AdamW",
            curve=0,
            tune={"lr": [1e-3, 3e-3]},
            builder=f"{STEPPERS}:adamw_stepper",
        ),
        Method(
            "sam",
            "LoRA-SAM",
            "SAM over AdamW, perturbing the LoRA factors only (--rho)",
            hparams=("rho", "sam_perturbation"),
            curve=1,
            tune={"rho": [0.01, 0.05, 0.1]},
            cost=2.0,
            builder=f"{STEPPERS}:sam_stepper",
        ),
        Method(
            "obar",
            "LoRA-oBAR",
            "LoRA + overparametrized BAR (the paper's oBAR; --mu0, --schedule)",
            hparams=("mu0", "schedule"),
            curve=3,
            tune={"mu0": [0.5, 1.0, 2.0], "schedule": "cosine"},
            builder=f"{STEPPERS}:obar_stepper",
            on_loraplus=True,
            check=check_bar_settings,
        ),
        Method(
            "nbar",
            "LoRA-nBAR",
            "LoRA + non-overparametrized BAR (the paper's nBAR; --mu0, --schedule)",
            hparams=("mu0", "schedule"),
            curve=2,
            tune={"mu0": [0.5, 1.0, 2.0], "schedule": "cosine"},
            builder=f"{STEPPERS}:nbar_stepper",
            on_loraplus=True,
            check=check_bar_settings,
        ),
        Method(
            "sbar",
            "LoRA-sBAR",
            "LoRA + BAR at SAM's own first-order rate (lorabar's; --rho)",
            hparams=("rho",),
            tune={"rho": [0.01, 1.0, 10.0]},
            builder=f"{STEPPERS}:sbar_stepper",
            on_loraplus=True,
            check=check_sbar_settings,
        ),
        Method(
            "loraplus",
            "LoRA+",
            "LoRA+ (B's lr = ratio x A's; --loraplus-ratio, --bar)",
            hparams=("loraplus_ratio",),
            tune={"loraplus_ratio": [4.0, 16.0]},
            builder=f"{STEPPERS}:loraplus_stepper",
        ),
        Method(
            "flatlora",
            "Flat-LoRA",
            "Flat-LoRA's random weight perturbation (--rho)",
            hparams=("rho",),
            tune={"rho": [0.01, 0.05]},
            builder=f"{STEPPERS}:flatlora_stepper",
        ),
        Method(
            "full",
            "Full FT",
            "full finetuning, no adapters (encoders)",
            adapter="none",
            kinds=("encoder",),
            tune={"lr": [1e-5, 3e-5]},
            builder=f"{STEPPERS}:adamw_stepper",
        ),
        Method(
            "prefix",
            "Prefix",
            "prefix tuning (Li & Liang 2021) through PEFT: trained "
            "key/value prefixes, no LoRA (causal LMs; --num-virtual-tokens)",
            adapter="prefix",
            hparams=("num_virtual_tokens",),
            kinds=("lm",),
            tune={"lr": [1e-2, 3e-2, 5e-2]},
            builder=f"{STEPPERS}:adamw_stepper",
        ),
    )
}
# the paper's four methods (its Table 1's columns) and the baseline every comparison pairs to
PAPER_METHODS = ("lora", "sam", "obar", "nbar")
BASELINE = "lora"
# what LoRA+ can carry on top (--bar): "none", or a rescaling method's name
LORAPLUS_BARS = ("none", *(m.name for m in METHODS.values() if m.on_loraplus))


def methods_table() -> str:
    """The methods as a markdown table (the docs' method page is this; a test checks it)."""
    rows = ["| method | label | what it is | reads | task kinds |", "|---|---|---|---|---|"]
    for m in METHODS.values():
        reads = ", ".join(f"`{h}`" for h in m.hparams) or "–"
        kinds = ", ".join(m.kinds) if m.kinds else "all"
        rows.append(f"| `{m.name}` | {m.label} | {m.description} | {reads} | {kinds} |")
    return "\n".join(rows)


def methods_for(kind: str) -> list[str]:
    """The methods that apply to task kind ``kind``, in the registry's order."""
    return [m.name for m in METHODS.values() if m.kinds is None or kind in m.kinds]


@dataclass(frozen=True)
class Metric:
    """A metric as every table, verdict and script shows it: ``scale`` turns a recorded value
    into the points reports print (a fraction in [0, 1]: 100; BLEU, already 0-100, and a
    log-likelihood: 1), ``higher`` whether dev selection prefers it higher (every recorded
    metric is, ``neg_nll`` included: the negated loss), ``paper`` its name in the paper,
    ``best`` the most a run can score, as recorded (none for a log-likelihood)."""

    name: str
    scale: float = 100.0
    higher: bool = True
    paper: str = ""
    best: float | None = 1.0


# every metric a task records: the one declaration reports, selection and scripts read
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", paper="accuracy"),
        Metric("f1", paper="F1"),
        Metric("mcc", paper="Matthews correlation"),
        Metric("pearson", paper="Pearson correlation"),
        Metric("spearman", paper="Spearman correlation"),
        Metric("exact_match", paper="exact match"),
        Metric("bleu", 1.0, paper="BLEU", best=100.0),
        Metric("bleu_seen", 1.0, paper="BLEU (seen categories)", best=100.0),
        Metric("bleu_unseen", 1.0, paper="BLEU (unseen categories)", best=100.0),
        Metric("neg_nll", 1.0, paper="negative log-likelihood per token", best=None),
        Metric("nll", 1.0, higher=False, paper="log-likelihood per token", best=None),
    )
}


def metric(name: str) -> Metric:
    """The declaration of metric ``name``; one no task records is a ``ValueError``."""
    if name not in METRICS:
        raise ValueError(f"Invalid metric: {name!r} (expected one of {sorted(METRICS)})")
    return METRICS[name]
