"""BAR and SAM under torch.distributed: DDP, FSDP1, FSDP2 (DTensor) and Accelerate, 2 processes
on CPU with gloo.  All scenarios run in one spawn (``dist_scenarios.py``); each test checks one."""

from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import dist_scenarios

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch built without distributed"
)
WORLD = 2


@pytest.fixture(scope="module")
def results():
    with tempfile.TemporaryDirectory() as tmp:
        ctx = mp.start_processes(
            dist_scenarios.worker,
            args=(WORLD, str(Path(tmp) / "rendezvous"), tmp, list(dist_scenarios.SCENARIOS)),
            nprocs=WORLD,
            join=False,
            start_method="spawn",
        )
        deadline = time.monotonic() + 240
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                for p in ctx.processes:
                    p.terminate()
                pytest.fail("distributed scenarios did not finish within 240 s")
        return [pickle.loads((Path(tmp) / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]


def get(results, name):
    per_rank = [r[name] for r in results]
    for r, res in enumerate(per_rank):
        if "error" in res:
            pytest.fail(f"rank {r} failed in {name}:\n{res['error']}")
    return per_rank


@pytest.mark.parametrize("mode", ["nbar", "obar", "sbar"])
def test_ddp_bar_same_decisions_and_bit_identical_params(results, mode):
    r0, r1 = get(results, f"ddp_bar_{mode}")
    assert r0["bar_step"] == r1["bar_step"] == dist_scenarios.STEPS  # accumulation: one per step
    assert torch.equal(r0["grads"], r1["grads"])  # all-reduced before the step, no_sync honoured
    assert r0["decisions"] == r1["decisions"]
    assert torch.equal(r0["params"], r1["params"])
    # ... and the same as one process on the global batch (2 ranks x 2 micro-batches)
    torch.testing.assert_close(r0["params"], r0["ref"], rtol=1e-10, atol=1e-12)
    assert not torch.equal(r0["params"], make_initial())  # it trained


def make_initial():
    from conftest import make_peft_model

    return torch.cat([p.detach().reshape(-1) for p in make_peft_model(0).parameters()])


def test_ddp_sam_synchronized_perturbation_is_sam_on_the_global_batch(results):
    r0, r1 = get(results, "ddp_sam_sync")
    assert torch.equal(r0["params"], r1["params"])
    torch.testing.assert_close(r0["params"], r0["ref"], rtol=1e-10, atol=1e-12)


def test_ddp_sam_per_rank_perturbation_is_m_sharpness_with_m_world_size(results):
    r0, r1 = get(results, "ddp_sam_per_rank")
    assert torch.equal(r0["params"], r1["params"])
    torch.testing.assert_close(r0["params"], r0["ref"], rtol=1e-10, atol=1e-12)
    # ... which is a different algorithm from synchronized SAM (the test can tell them apart)
    sync = get(results, "ddp_sam_sync")[0]["params"]
    assert (r0["params"] - sync).abs().max() > 1e-6


def test_ddp_sam_fp16_inf_on_one_rank_skips_everywhere(results):
    r0, r1 = get(results, "ddp_sam_fp16_skip")
    assert not r0["changed"] and not r1["changed"]
    assert r0["scale"] == r1["scale"] == 2.0**7


@pytest.mark.parametrize(
    "name",
    ["fsdp1_nbar", "fsdp1_obar", "fsdp1_sbar", "fsdp2_nbar", "fsdp2_obar", "fsdp2_sbar_global"],
)
def test_fsdp_bar_matches_single_process(results, name):
    r0, r1 = get(results, name)
    assert r0["sharded"] and r1["sharded"]  # FSDP1: process_group given; FSDP2: DTensor found
    assert torch.equal(r0["params"], r1["params"])
    # float64; the norms are sums of per-rank squares, so rounding differs from one process
    torch.testing.assert_close(r0["params"], r0["ref"], rtol=1e-9, atol=1e-12)


def test_fsdp1_really_shards_the_factors(results):
    r0, r1 = get(results, "fsdp1_obar")
    assert r0["local_numel"] != r1["local_numel"]  # each rank holds different slices
    assert 0 in r0["local_numel"] + r1["local_numel"]  # some factor is absent on one rank


def test_fsdp1_without_process_group_fails_loudly(results):
    """Per-shard norms would give wrong decisions; an empty factor slice gives it away."""
    raised = [r["raised"] for r in get(results, "fsdp1_without_group")]
    assert any(raised)
    for msg in filter(None, raised):
        assert "has no elements on this rank" in msg and "process_group" in msg


@pytest.mark.parametrize("name", ["fsdp1_sam", "fsdp2_sam"])
def test_fsdp_sam_matches_single_process(results, name):
    r0, r1 = get(results, name)
    assert r0["sharded"] and r1["sharded"]
    assert torch.equal(r0["params"], r1["params"])
    torch.testing.assert_close(r0["params"], r0["ref"], rtol=1e-9, atol=1e-12)


def test_accelerate_bar_with_gradient_accumulation(results):
    r0, r1 = get(results, "accelerate_bar")
    assert r0["distributed_type"].endswith("MULTI_CPU")
    assert r0["bar_step"] == dist_scenarios.STEPS  # accumulation steps skipped BAR
    assert torch.equal(r0["params"], r1["params"])
    torch.testing.assert_close(r0["params"], r0["ref"], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- single process
def test_ddp_sam_step_rejects_bad_arguments():
    from conftest import loss_of, make_batch, make_peft_model

    import lorabar
    from lorabar.distributed import ddp_sam_step

    model = make_peft_model(0)
    sam = lorabar.SAM([p for p in model.parameters() if p.requires_grad], torch.optim.SGD, lr=0.1)
    batch = [make_batch(0)]
    with pytest.raises(ValueError, match="Invalid perturbation: 'global'"):
        ddp_sam_step(model, sam, lambda b: loss_of(model, b), batch, perturbation="global")
    with pytest.raises(TypeError, match="has no no_sync"):
        ddp_sam_step(model, sam, lambda b: loss_of(model, b), batch)
    with pytest.raises(TypeError, match="expected lorabar.SAM"):
        ddp_sam_step(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_of, batch)


def test_shard_group_of_plain_tensors_is_none():
    from lorabar.distributed import local_tensor, shard_group

    t = torch.ones(3)
    assert shard_group([t, torch.zeros(2)]) is None
    assert local_tensor(t) is t


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.data
def test_lorabar_finetune_under_torchrun_writes_once(tmp_path):
    """`lorabar finetune` unchanged under torchrun: DDP on gloo, rank 0 evaluates and writes."""
    import json
    import os
    import subprocess
    import sys

    from conftest import DATA

    out = tmp_path / "run.json"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "lorabar.cli",
        "finetune",
        "--model",
        "tiny",
        "--task",
        "sst2",
        "--method",
        "sam",
        "--sam-perturbation",
        "per_rank",
        "--steps",
        "4",
        "--batch-size",
        "8",
        "--max-eval",
        "16",
        "--quiet",
        "--data-dir",
        str(DATA),
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # rank 0 only
    result = json.loads(out.read_text())
    assert result["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert result["config"]["sam_perturbation"] == "per_rank"
    assert result["runtime"]["device"] == "cpu"
    assert list(tmp_path.iterdir()) == [out]  # no partial files left by other ranks


def test_shard_splits_the_global_batch():
    from lorabar.harness.run.launch import Dist, shard

    assert shard(list(range(8)), Dist(1, 2)) == [1, 3, 5, 7]
    assert shard(list(range(8)), Dist()) == list(range(8))
    with pytest.raises(
        ValueError, match="Invalid batch_size: 7 is not divisible by the world size 2"
    ):
        shard(list(range(7)), Dist(0, 2))


def test_run_config_checks_sam_perturbation_and_keeps_old_run_ids():
    from lorabar.harness.run.config import EncoderConfig as RunConfig

    with pytest.raises(ValueError, match="Invalid sam_perturbation: 'all'"):
        RunConfig(method="sam", sam_perturbation="all")
    assert "sam_perturbation" not in RunConfig(method="sam").key()  # default: ids unchanged
    assert (
        RunConfig(method="sam", sam_perturbation="per_rank").key()["sam_perturbation"] == "per_rank"
    )


def test_bar_rejects_an_empty_factor_without_process_group():
    import lorabar

    pair = lorabar.FactorPair(
        x=torch.nn.Parameter(torch.zeros(0)), y=torch.nn.Parameter(torch.ones(3)), name="layer0"
    )
    with pytest.raises(ValueError, match="'layer0' has no elements on this rank.*process_group"):
        lorabar.BAR([pair], mode="obar")
