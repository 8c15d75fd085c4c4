"""BAR in a plain PyTorch loop: attach it to any optimizer, then train as usual.

    python examples/plain_loop.py [--steps 100] [--model PATH_OR_HUB_ID]
"""

from __future__ import annotations

import argparse

import torch

import lorabar
from _tiny import tiny_classifier, token_batches, with_lora

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=100)
parser.add_argument("--model", default=None, help="a local folder or hub id (default: tiny)")
args = parser.parse_args()

model = with_lora(tiny_classifier(args.model))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=args.steps)
pairs = lorabar.find_lora_pairs(model)  # by module type and adapter: fails loudly if none
bar = lorabar.BAR(pairs, mode="nbar", mu0=0.5, schedule="cosine", total_steps=args.steps)
bar.attach(opt)  # a step pre-hook: runs right before every opt.step(), with its current lr

data = token_batches()
print(f"before: mean |B| = {lorabar.balancedness(pairs).mean_abs_B.item():.4f}")
for step in range(args.steps):
    batch = {k: torch.stack([d[k] for d in data[(8 * step) % 64:(8 * step) % 64 + 8]])
             for k in data[0]}
    loss = model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    sched.step()
print(f"after {args.steps} steps: loss {loss.item():.4f}, mean |B| = "
      f"{lorabar.balancedness(pairs).mean_abs_B.item():.4f} (BAR step {bar.step})")
# to resume bit for bit, checkpoint BAR's state beside the rest:
# torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
#             "bar": bar.state_dict()}, "ckpt.pt")
