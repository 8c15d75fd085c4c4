"""Device and precision resolution (every hardware case simulated on this CPU), and the layering
of the package: no import cycle, SAM's two passes only where they belong."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest
import torch

from lorabar.harness.run import runtime as R

SRC = Path(__file__).resolve().parents[1] / "src" / "lorabar"


@pytest.fixture
def hardware(monkeypatch):
    """Pretend to be a machine: ``hardware(cuda=..., cuda_bf16=..., cpu_bf16=...)``."""
    monkeypatch.delenv(R.NATIVE_BF16_ENV, raising=False)
    monkeypatch.setattr(R, "_warned", set())

    def set_(cuda=False, cuda_bf16=False, cpu_bf16=False, gpus=1):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if cuda else 0)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: cpu_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)

    return set_


@pytest.mark.parametrize(
    "cuda, cuda_bf16, cpu_bf16, device, precision",
    [
        (False, False, False, "cpu", "fp32"),  # AVX2-only CPU: bf16 would be emulated
        (False, False, True, "cpu", "bf16"),  # AVX512-BF16 / AMX CPU
        (True, True, False, "cuda", "bf16"),  # Ampere and newer
        (True, False, True, "cuda", "fp16"),  # older GPUs: fp16 + GradScaler
    ],
)
def test_auto_resolution(hardware, cuda, cuda_bf16, cpu_bf16, device, precision):
    hardware(cuda=cuda, cuda_bf16=cuda_bf16, cpu_bf16=cpu_bf16)
    dev = R.resolve_device("auto")
    assert dev.type == device
    assert R.resolve_precision("auto", dev) == precision


def test_amx_counts_as_native(hardware, monkeypatch):
    hardware()
    assert not R.cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert R.cpu_has_native_bf16()


def test_env_override(hardware, monkeypatch):
    hardware(cpu_bf16=True)
    monkeypatch.setenv(R.NATIVE_BF16_ENV, "0")
    assert R.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setenv(R.NATIVE_BF16_ENV, "yes")
    with pytest.raises(ValueError, match=r"Invalid LORABAR_NATIVE_BF16: 'yes' \(expected 0 or 1\)"):
        R.cpu_has_native_bf16()


def test_explicit_bf16_on_emulating_cpu_warns_once(hardware):
    hardware(cpu_bf16=False)
    cpu = torch.device("cpu")
    with pytest.warns(RuntimeWarning, match="without native bf16"):
        assert R.resolve_precision("bf16", cpu) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert R.resolve_precision("bf16", cpu) == "bf16"  # once only
    hardware(cpu_bf16=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        R.resolve_precision("bf16", cpu)


def test_device_errors_and_local_rank(hardware):
    hardware(cuda=False)
    with pytest.raises(ValueError, match=r"Invalid device: 'cuda' \(CUDA is not available here"):
        R.resolve_device("cuda")
    with pytest.raises(ValueError, match=r"Invalid device: 'tpu' \(expected auto \| cpu"):
        R.resolve_device("tpu")
    with pytest.raises(ValueError, match=r"Invalid precision: 'fp8'"):
        R.resolve_precision("fp8", torch.device("cpu"))
    hardware(cuda=True, gpus=2)
    assert R.resolve_device("cuda", local_rank=1) == torch.device("cuda:1")  # torchrun
    assert R.resolve_device("auto", local_rank=1) == torch.device("cuda:1")
    assert R.resolve_device("cuda:0", local_rank=1) == torch.device("cuda:0")  # explicit wins
    with pytest.raises(ValueError, match=r"only 2 CUDA devices"):
        R.resolve_device("cuda:2")


def test_runtime_autocast_and_scaler():
    cpu = torch.device("cpu")
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with R.Runtime(cpu, "fp32").autocast():
        assert lin(x).dtype == torch.float32
    with R.Runtime(cpu, "bf16").autocast():
        assert lin(x).dtype == torch.bfloat16
    assert lin.weight.dtype == torch.float32  # parameters stay fp32
    assert R.Runtime(cpu, "bf16").grad_scaler() is None
    assert isinstance(R.Runtime(cpu, "fp16").grad_scaler(), torch.amp.GradScaler)
    d = R.Runtime.resolve("cpu", "fp32").describe()
    assert d["device"] == "cpu" and d["precision"] == "fp32" and d["requested_device"] == "cpu"
    assert R.Runtime(cpu, "fp32").to_device({"a": [x]})["a"][0] is x


# ----------------------------------------------------------------------------- layering
def _imports(path: Path) -> set[str]:
    """Modules of lorabar that ``path`` imports (at module level or lazily inside functions)."""
    mod = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    if path.name == "__init__.py":
        mod = package
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n.startswith("lorabar")}
    return out


def test_no_import_cycle_in_src():
    modules = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {m: {d for d in _imports(p) if d in modules and d != m} for m, p in modules.items()}
    # a package's __init__ re-exporting its modules is not a cycle of the modules themselves
    graph = {
        m: {d for d in deps if not (m.startswith(d + ".") and d in graph)}
        for m, deps in graph.items()
    }
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    core = [m for m in graph if m.count(".") == 1 and not m.startswith(("lorabar.cli",))]
    for m in core:  # the core points down only: nothing from the harness or the apps
        assert not {
            d
            for d in graph[m]
            if d.startswith(("lorabar.harness", "lorabar.apps", "lorabar.integrations"))
        }, m


def test_sam_two_passes_only_in_sam_its_loop_distributed_and_hf():
    callers = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if re.search(r"\.first_step\(", p.read_text())
    )
    assert callers == ["distributed.py", "integrations/hf.py", "sam.py", "sam_loop.py"]
