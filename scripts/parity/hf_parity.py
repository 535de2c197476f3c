#!/usr/bin/env python3
"""hf_parity.py CKPT FILE -- bits per byte of a BLT checkpoint under Hugging Face's BltForCausalLM.

Compare with `bytelm eval --ckpt CKPT --data FILE --json`: both prepend BOS to each window of the
checkpoint's `bytelm_context` bytes, score every byte (no EOS) and patch with the checkpoint's own
settings, so the two bpb values must agree (fp32). Needs python3 with torch and transformers >= 5
(the GPU machine has them; Debian's CPU machines cannot install transformers).
"""
import json
import math
import sys

import torch
from transformers import BltForCausalLM


def main() -> None:
    ckpt, path = sys.argv[1], sys.argv[2]
    cfg = json.load(open(f"{ckpt}/config.json"))
    window = cfg.get("bytelm_context") or cfg["encoder_config"].get("max_position_embeddings", 24576)
    model = BltForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    data = open(path, "rb").read()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), window):
            chunk = data[start:start + window]
            ids = torch.tensor([[1] + [b + 4 for b in chunk]])
            logits = model(ids, use_cache=False).logits[0, :-1].float()  # row t predicts id t + 1
            total += torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
            count += len(chunk)
    print(json.dumps({"ckpt": ckpt, "bytes": count, "bpb": total / math.log(2) / count}))


if __name__ == "__main__":
    main()
