"""Scenarios run in 2 processes (gloo on CPU, ``file://`` rendezvous) by ``test_distributed.py``.

Each scenario returns a dict of plain numbers / tensors; the tests compare them across ranks and
with a single-process reference computed in the same process on the global batch.  Everything is
float64 so that "equal" can be tight.
"""

from __future__ import annotations

import copy
import datetime
import os
import pickle
import traceback

import torch
import torch.distributed as dist

import lorabar
from conftest import loss_of, make_batch, make_peft_model

STEPS = 4
LR = 0.05


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for p in model.parameters()])


def _batches(step: int, rank: int, world: int, k: int):
    """This rank's k micro-batches at ``step`` and the global batch (all ranks, in rank order)."""
    per = [[make_batch(1000 * step + 10 * r + j, n=4) for j in range(k)] for r in range(world)]
    glob_ids = torch.cat([mb[0] for r in range(world) for mb in per[r]])
    glob_y = torch.cat([mb[1] for r in range(world) for mb in per[r]])
    return per[rank], (glob_ids, glob_y), per


def _bar_kw(mode, mu0):
    """sBAR reads rho (and norm: "sbar_global"); nBAR/oBAR read mu0."""
    if mode.startswith("sbar"):
        return {"mode": "sbar", "rho": 0.5, "norm": "global" if mode == "sbar_global" else "pair"}
    return {"mode": mode, "mu0": mu0}


def _decisions(pairs, mode):
    """The BAR branch each pair takes now (1 = grow x), from full tensors (sBAR: the sign of c)."""
    if mode == "nbar" or mode.startswith("sbar"):
        return [int(p.x.grad.norm() >= p.y.grad.norm()) for p in pairs]
    return [int(p.x.norm() < p.y.norm()) for p in pairs]


# ----------------------------------------------------------------------------- DDP + BAR
def ddp_bar(rank, world, mode, k=2):
    from torch.nn.parallel import DistributedDataParallel as DDP

    ref = make_peft_model(0)
    model = DDP(copy.deepcopy(ref))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    bar = lorabar.BAR(lorabar.find_lora_pairs(model.module), **_bar_kw(mode, 2.0))
    decisions = []
    opt.register_step_pre_hook(lambda *a: decisions.append(_decisions(bar.pairs, mode)))
    bar.attach(opt)
    ref_opt = torch.optim.AdamW([p for p in ref.parameters() if p.requires_grad], lr=LR)
    ref_bar = lorabar.BAR(lorabar.find_lora_pairs(ref), **_bar_kw(mode, 2.0))
    ref_bar.attach(ref_opt)
    grads_synced = []
    for step in range(STEPS):
        mine, glob, _ = _batches(step, rank, world, k)
        for j, mb in enumerate(mine):  # gradient accumulation: only the last backward syncs
            ctx = model.no_sync() if j < k - 1 else torch.enable_grad()
            with ctx:
                (loss_of(model, mb) / k).backward()
        grads_synced.append(_flat_grads(model.module))
        opt.step()
        opt.zero_grad()
        loss_of(ref, glob).backward()
        ref_opt.step()
        ref_opt.zero_grad()
    return {
        "params": _flat(model.module),
        "ref": _flat(ref),
        "decisions": decisions,
        "grads": torch.stack(grads_synced),
        "bar_step": bar.step,
    }


def _flat_grads(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


# ----------------------------------------------------------------------------- DDP + SAM
def ddp_sam(rank, world, perturbation, k=1):
    from torch.nn.parallel import DistributedDataParallel as DDP

    from lorabar.distributed import ddp_sam_step

    ref = make_peft_model(0)
    model = DDP(copy.deepcopy(ref))
    opt = lorabar.SAM(
        [p for p in model.parameters() if p.requires_grad], torch.optim.SGD, rho=0.5, lr=LR
    )
    ref_opt = lorabar.SAM(
        [p for p in ref.parameters() if p.requires_grad], torch.optim.SGD, rho=0.5, lr=LR
    )
    for step in range(STEPS):
        mine, _, per = _batches(step, rank, world, k)
        ddp_sam_step(model, opt, lambda b: loss_of(model, b), mine, perturbation=perturbation)
        if perturbation == "sync":  # SAM on the global batch, accumulated like the ranks do
            micro = [mb for r in range(world) for mb in per[r]]
            for mb in micro:
                (loss_of(ref, mb) / len(micro)).backward()
            ref_opt.first_step(zero_grad=True)
            for mb in micro:
                (loss_of(ref, mb) / len(micro)).backward()
            ref_opt.second_step(zero_grad=True)
        else:  # m-sharpness: one chunk per rank
            assert k == 1
            ids = torch.cat([per[r][0][0] for r in range(world)])
            y = torch.cat([per[r][0][1] for r in range(world)])
            lorabar.sam_step(ref_opt, lambda b: loss_of(ref, b), (ids, y), m=world)
    return {"params": _flat(model.module), "ref": _flat(ref)}


def ddp_sam_fp16_skip(rank, world):
    """An inf in rank 1's first pass only (per-rank perturbation): every rank must skip."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from lorabar.distributed import ddp_sam_step

    model = DDP(make_peft_model(0, dtype=torch.float32))
    opt = lorabar.SAM(
        [p for p in model.parameters() if p.requires_grad], torch.optim.SGD, rho=0.05, lr=LR
    )
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    before = _flat(model.module)
    calls = {"n": 0}

    def loss_fn(b):
        calls["n"] += 1
        loss = loss_of(model, b)
        if rank == 1 and calls["n"] == 1:
            loss = loss * float("inf")
        return loss

    ddp_sam_step(
        model, opt, loss_fn, [make_batch(rank, n=4)], perturbation="per_rank", scaler=scaler
    )
    scaler.update()
    return {"changed": bool((_flat(model.module) != before).any()), "scale": scaler.get_scale()}


# ----------------------------------------------------------------------------- FSDP
def _fsdp_run(rank, world, wrap, mode, use_group=True, sam=False):
    ref = make_peft_model(0)
    model = wrap(copy.deepcopy(ref))
    trainable = [p for p in model.parameters() if p.requires_grad]
    if sam:
        kw = {"process_group": dist.group.WORLD} if use_group == "fsdp1" else {}
        opt = lorabar.SAM(trainable, torch.optim.SGD, rho=0.5, lr=LR, **kw)
        ref_opt = lorabar.SAM(
            [p for p in ref.parameters() if p.requires_grad], torch.optim.SGD, rho=0.5, lr=LR
        )
    else:
        opt = torch.optim.SGD(trainable, lr=LR)
        kw = {"process_group": dist.group.WORLD} if use_group == "fsdp1" else {}
        bar = lorabar.BAR(lorabar.find_lora_pairs(model), **_bar_kw(mode, 4.0), **kw)
        bar.attach(opt)
        ref_opt = torch.optim.SGD([p for p in ref.parameters() if p.requires_grad], lr=LR)
        lorabar.BAR(lorabar.find_lora_pairs(ref), **_bar_kw(mode, 4.0)).attach(ref_opt)
    for step in range(STEPS):
        mine, glob, _ = _batches(step, rank, world, 1)
        if sam:
            loss_of(model, mine[0]).backward()
            opt.first_step(zero_grad=True)
            loss_of(model, mine[0]).backward()
            opt.second_step(zero_grad=True)
            loss_of(ref, glob).backward()
            ref_opt.first_step(zero_grad=True)
            loss_of(ref, glob).backward()
            ref_opt.second_step(zero_grad=True)
        else:
            loss_of(model, mine[0]).backward()
            opt.step()
            opt.zero_grad()
            loss_of(ref, glob).backward()
            ref_opt.step()
            ref_opt.zero_grad()
    model.lorabar_sharded = (opt if sam else bar)._sharded
    return model, ref


def fsdp1(rank, world, mode, use_group=True, sam=False):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    def wrap(m):
        return FSDP(m, device_id=torch.device("cpu"), use_orig_params=True)

    model, ref = _fsdp_run(rank, world, wrap, mode, "fsdp1" if use_group else False, sam)
    local_sizes = [p.numel() for p in model.parameters() if p.requires_grad]
    with FSDP.summon_full_params(model):
        full = _flat(model.module)
    return {
        "params": full,
        "ref": _flat(ref),
        "local_numel": local_sizes,
        "sharded": model.lorabar_sharded,
    }


def fsdp2(rank, world, mode, sam=False):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))

    def wrap(m):
        return fully_shard(m, mesh=mesh)

    model, ref = _fsdp_run(rank, world, wrap, mode, "dtensor", sam)
    full = torch.cat([p.full_tensor().detach().reshape(-1) for p in model.parameters()])
    return {"params": full, "ref": _flat(ref), "sharded": model.lorabar_sharded}


# ----------------------------------------------------------------------------- Accelerate
def accelerate_bar(rank, world, k=2):
    from accelerate import Accelerator

    acc = Accelerator(cpu=True, gradient_accumulation_steps=k)
    ref = make_peft_model(0)
    model = copy.deepcopy(ref)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    bar = lorabar.BAR(lorabar.find_lora_pairs(model), mode="nbar", mu0=2.0)
    model, opt = acc.prepare(model, opt)
    from lorabar.integrations.hf import unwrap_optimizer

    bar.attach(unwrap_optimizer(opt))
    ref_opt = torch.optim.AdamW([p for p in ref.parameters() if p.requires_grad], lr=LR)
    lorabar.BAR(lorabar.find_lora_pairs(ref), mode="nbar", mu0=2.0).attach(ref_opt)
    for step in range(STEPS):
        mine, glob, _ = _batches(step, rank, world, k)
        for mb in mine:
            with acc.accumulate(model):
                acc.backward(loss_of(model, mb))
                opt.step()
                opt.zero_grad()
        loss_of(ref, glob).backward()
        ref_opt.step()
        ref_opt.zero_grad()
    return {
        "params": _flat(acc.unwrap_model(model)),
        "ref": _flat(ref),
        "bar_step": bar.step,
        "distributed_type": str(acc.distributed_type),
    }


def _raises(fn):
    try:
        fn()
    except ValueError as e:
        return {"raised": str(e)}
    return {"raised": None}


SCENARIOS = {
    "ddp_bar_nbar": lambda r, w: ddp_bar(r, w, "nbar"),
    "ddp_bar_obar": lambda r, w: ddp_bar(r, w, "obar"),
    "ddp_bar_sbar": lambda r, w: ddp_bar(r, w, "sbar"),
    "ddp_sam_sync": lambda r, w: ddp_sam(r, w, "sync", k=2),
    "ddp_sam_per_rank": lambda r, w: ddp_sam(r, w, "per_rank"),
    "ddp_sam_fp16_skip": ddp_sam_fp16_skip,
    "fsdp1_nbar": lambda r, w: fsdp1(r, w, "nbar"),
    "fsdp1_obar": lambda r, w: fsdp1(r, w, "obar"),
    "fsdp1_sbar": lambda r, w: fsdp1(r, w, "sbar"),
    "fsdp1_without_group": lambda r, w: _raises(lambda: fsdp1(r, w, "obar", use_group=False)),
    "fsdp1_sam": lambda r, w: fsdp1(r, w, "nbar", sam=True),
    "fsdp2_nbar": lambda r, w: fsdp2(r, w, "nbar"),
    "fsdp2_obar": lambda r, w: fsdp2(r, w, "obar"),
    "fsdp2_sbar_global": lambda r, w: fsdp2(r, w, "sbar_global"),
    "fsdp2_sam": lambda r, w: fsdp2(r, w, "nbar", sam=True),
    "accelerate_bar": accelerate_bar,
}


def worker(rank: int, world: int, rendezvous: str, out_dir: str, names: list[str]) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
    )
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    results = {}
    for name in names:
        try:
            results[name] = SCENARIOS[name](rank, world)
        except Exception:  # recorded: the test for this scenario reports it
            results[name] = {"error": traceback.format_exc()}
        dist.barrier()
    with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(results, f)
    dist.destroy_process_group()


__all__ = ["SCENARIOS", "worker"]
