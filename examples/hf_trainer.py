"""BAR with the Hugging Face Trainer: one callback (BAR's state travels in the checkpoints).

python examples/hf_trainer.py [--steps 40] [--out OUT] [--model PATH_OR_HUB_ID] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile

from transformers import Trainer, TrainingArguments

from _tiny import common_args, setup, tiny_classifier, token_batches, with_lora
from lorabar.integrations.hf import BARCallback, add_callback_first

parser = common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
parser.add_argument("--steps", type=int, default=40)
parser.add_argument("--out", default=None, help="checkpoints (default: a temporary folder)")
parser.add_argument("--model", default=None, help="a local folder or hub id (default: tiny)")
args = parser.parse_args()
setup(args)

out = args.out or tempfile.mkdtemp()
bar = BARCallback(mode="nbar", mu0=0.5, schedule="cosine")
trainer = Trainer(
    model=with_lora(tiny_classifier(args.model)),
    train_dataset=token_batches(),
    args=TrainingArguments(
        output_dir=out,
        max_steps=args.steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=10,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    ),
    callbacks=[bar],
)
add_callback_first(trainer, bar)  # so report_to loggers (TensorBoard, W&B) get bar/* too
trainer.train()
for entry in trainer.state.log_history:
    if "bar/mean_abs_B" in entry and "loss" in entry:
        print(
            f"step {entry['step']}: loss {entry['loss']:.4f}, "
            f"mean |B| {entry['bar/mean_abs_B']:.4f}"
        )
