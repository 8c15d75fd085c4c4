"""BAR in an Accelerate loop: attach it to the prepared optimizer's base optimizer and register
it for checkpointing, so ``save_state``/``load_state`` carry its step.

    python examples/accelerate_loop.py [--steps 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from accelerate import Accelerator

import lorabar
from _tiny import common_args, setup, tiny_classifier, token_batches, with_lora

parser = common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
parser.add_argument("--steps", type=int, default=40)
parser.add_argument("--model", default=None, help="a local folder or hub id (default: tiny)")
args = parser.parse_args()
setup(args)

accelerator = Accelerator(cpu=not torch.cuda.is_available())
model = with_lora(tiny_classifier(args.model))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
loader = torch.utils.data.DataLoader(token_batches(), batch_size=8, shuffle=True)
model, opt, loader = accelerator.prepare(model, opt, loader)
bar = lorabar.BAR(lorabar.find_lora_pairs(model), mode="nbar", mu0=0.5)
bar.attach(opt.optimizer)  # the optimizer Accelerate wraps
accelerator.register_for_checkpointing(bar)

step = 0
while step < args.steps:
    for batch in loader:
        accelerator.backward(model(**batch).loss)
        opt.step()
        opt.zero_grad()
        step += 1
        if step == args.steps:
            break
folder = tempfile.mkdtemp()
accelerator.save_state(folder)  # BAR's state is in it
print(
    f"{step} steps, BAR step {bar.step}, mean |B| "
    f"{lorabar.balancedness(bar.pairs).mean_abs_B.item():.4f}; state saved in {folder}"
)
