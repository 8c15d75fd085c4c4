"""BAR in a plain PyTorch loop: attach it to any optimizer, then train as usual.  The same run
without BAR beside it, so you see what BAR did: |B| and held-out accuracy for both.

    python examples/plain_loop.py [--steps 100] [--model PATH_OR_HUB_ID] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

import lorabar
from _tiny import common_args, setup, tiny_classifier, token_batches, with_lora

parser = common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
parser.add_argument("--steps", type=int, default=100)
parser.add_argument("--model", default=None, help="a local folder or hub id (default: tiny)")
args = parser.parse_args()
setup(args)


def train(with_bar: bool) -> dict:
    """LoRA (and BAR if ``with_bar``) from the same start on the same batches."""
    model = with_lora(tiny_classifier(args.model))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=args.steps)
    pairs = lorabar.find_lora_pairs(model)  # by module type and adapter: fails loudly if none
    start = lorabar.balancedness(pairs).mean_abs_B.item()
    if with_bar:
        bar = lorabar.BAR(pairs, mode="nbar", mu0=0.5, schedule="cosine", total_steps=args.steps)
        bar.attach(opt)  # a step pre-hook: runs right before every opt.step(), with its lr
    data = token_batches()
    for step in range(args.steps):
        batch = {
            k: torch.stack([d[k] for d in data[(8 * step) % 64 : (8 * step) % 64 + 8]])
            for k in data[0]
        }
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    held_out = token_batches(seed=1)
    with torch.no_grad():
        batch = {k: torch.stack([d[k] for d in held_out]) for k in held_out[0]}
        accuracy = (model(**batch).logits.argmax(-1) == batch["labels"]).float().mean().item()
    return {
        "start": start,
        "B": lorabar.balancedness(pairs).mean_abs_B.item(),
        "loss": loss.item(),
        "accuracy": accuracy,
    }


runs = {"LoRA": train(False), "LoRA + nBAR": train(True)}
print(f"after {args.steps} steps (mean |B| at the start {runs['LoRA']['start']:.4f}):")
print(f"{'':12}  {'mean |B|':>9}  {'last loss':>9}  {'held-out acc':>12}")
for name, r in runs.items():
    print(f"{name:12}  {r['B']:9.4f}  {r['loss']:9.4f}  {r['accuracy']:12.3f}")
# to resume bit for bit, checkpoint BAR's state beside the rest:
# torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
#             "bar": bar.state_dict()}, "ckpt.pt")
