"""BAR with TRL's SFTTrainer (LoRA through its peft_config): the same one callback.

    python examples/trl_sft.py [--steps 20] [--threads 1]

The model and tokenizer here are tiny ones built in code; pass yours to SFTTrainer as usual.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from datasets import Dataset
from peft import LoraConfig
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import SFTConfig, SFTTrainer

from _tiny import common_args, setup
from lorabar.integrations.hf import BARCallback

parser = common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
parser.add_argument("--steps", type=int, default=20)
args = parser.parse_args()
setup(args)

torch.manual_seed(0)
model = LlamaForCausalLM(
    LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
)
words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(64)}, unk_token="t1"))
words.pre_tokenizer = pre_tokenizers.Whitespace()
tokenizer = PreTrainedTokenizerFast(
    tokenizer_object=words, pad_token="t0", unk_token="t1", eos_token="t2"
)
g = torch.Generator().manual_seed(0)
data = Dataset.from_dict(
    {"input_ids": [torch.randint(3, 64, (16,), generator=g).tolist() for _ in range(32)]}
)
bar = BARCallback(mode="obar", mu0=0.5)
trainer = SFTTrainer(
    model=model,
    train_dataset=data,
    processing_class=tokenizer,
    callbacks=[bar],
    peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
    args=SFTConfig(
        output_dir=tempfile.mkdtemp(),
        max_steps=args.steps,
        learning_rate=1e-3,
        per_device_train_batch_size=8,
        logging_steps=5,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    ),
)
trainer.train()
last = [h for h in trainer.state.log_history if "bar/mean_abs_B" in h][-1]
print(f"SFT with oBAR: {bar.bar.step} BAR steps, final mean |B| {last['bar/mean_abs_B']:.4f}")
