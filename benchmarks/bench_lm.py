"""Benchmark: per-iteration time of LoRA, LoRA+nBAR, LoRA+oBAR and LoRA-SAM on SmolLM2-135M,
in fp32 and in bf16 autocast, interleaved in one run (paper Tables 2 and 9 report SAM in FP32
only, because their SAM underflowed in FP16).

    python benchmarks/bench_lm.py [--model smollm2] [--batch 8] [--seq 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import lorabar
from lorabar.experiments.causal import causal_lora_targets, load_causal_lm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base, _ = load_causal_lm(args.model)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                            target_modules=causal_lora_targets(base)))
    pairs = lorabar.find_lora_pairs(model)
    params = [p for p in model.parameters() if p.requires_grad]
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq))
    opts = {"lora": torch.optim.AdamW(params, lr=1e-5), "nbar": torch.optim.AdamW(params, lr=1e-5),
            "obar": torch.optim.AdamW(params, lr=1e-5),
            "sam": lorabar.SAM(params, torch.optim.AdamW, rho=0.05, lr=1e-5)}
    lorabar.BAR(pairs, mode="nbar", mu0=1.0).attach(opts["nbar"])
    lorabar.BAR(pairs, mode="obar", mu0=1.0).attach(opts["obar"])

    def step(method: str, bf16: bool) -> None:
        def loss():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(input_ids=ids, labels=ids).loss

        loss().backward()
        opt = opts[method]
        if method == "sam":
            opt.first_step(zero_grad=True)
            loss().backward()
            opt.second_step(zero_grad=True)
        else:
            opt.step()
            opt.zero_grad()

    times = {(m, p): [] for p in (False, True) for m in opts}
    for key in times:
        step(*key)  # warm-up
    for _ in range(args.repeats):
        for key in times:
            t0 = time.perf_counter()
            step(*key)
            times[key].append(time.perf_counter() - t0)
    print(f"{args.model}: {len(pairs)} LoRA pairs, batch {args.batch} x seq {args.seq}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print("| precision | LoRA s | nBAR / LoRA | oBAR / LoRA | SAM / LoRA |")
    print("|---|---|---|---|---|")
    for bf16 in (False, True):
        med = {m: statistics.median(times[(m, bf16)]) for m in opts}
        print(f"| {'bf16' if bf16 else 'fp32'} | {med['lora']:.3f} | {med['nbar'] / med['lora']:.3f} | "
              f"{med['obar'] / med['lora']:.3f} | {med['sam'] / med['lora']:.3f} |")


if __name__ == "__main__":
    main()
