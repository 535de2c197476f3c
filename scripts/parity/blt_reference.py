#!/usr/bin/env python3
"""blt_reference.py CKPT FILE -- bits per byte of a BLT checkpoint by a slow reference forward pass.

An independent transcription, in plain PyTorch, of the forward semantics of Hugging Face's
BltForCausalLM (modeling_blt.py: BltPatcher entropies and patch_lengths_from_entropies,
process_patch_lengths, compute_hash_embeddings, local encoder with amax patch_reduce and
cross-attention, global transformer, local decoder with _patch_ids_from_lengths(lengths[:, 1:]),
interleaved rotary pairs, cross-attention returning o_proj(attn) + query). It reads bytelm's
HF-layout checkpoint (config.json + F32 model.safetensors) directly and scores FILE in windows of
`bytelm_context` bytes, each prefixed with BOS, like `bytelm eval`. Only entropy patching, as in HF.
Runs with the checkout's .venv torch (or any PyTorch 2.x); tests/blt/hf_reference_test.sh compares it with bytelm.
"""
import json, math, struct, sys
import torch
F = torch.nn.functional
ckpt, path = sys.argv[1], sys.argv[2]
raw = open(f"{ckpt}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
W = {}
for k, v in hdr.items():
    if k == "__metadata__": continue
    s, e = v["data_offsets"]
    W[k] = torch.frombuffer(bytearray(raw[8 + n + s:8 + n + e]), dtype=torch.float32).reshape(v["shape"])
C = json.load(open(f"{ckpt}/config.json"))
MIN = torch.finfo(torch.float32).min

def rms(x, w, eps): return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
def rope(x, theta):
    D, T = x.shape[-1], x.shape[2]
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    freqs = (inv[:, None] @ torch.arange(T).float()[None, :]).transpose(0, 1)
    emb = torch.repeat_interleave(freqs, 2, dim=-1)
    x1, x2 = x[..., ::2], x[..., 1::2]
    return x * emb.cos() + torch.stack([-x2, x1], dim=-1).flatten(-2) * emb.sin()
def attend(q, k, v, mask):
    s = q @ k.transpose(2, 3) * q.shape[-1] ** -0.5
    if mask is not None: s = s + mask
    return torch.softmax(s, -1) @ v
def layer(h, p, cfg):
    H, eps, theta = cfg["num_attention_heads"], cfg["rms_norm_eps"], cfg["rope_parameters"]["rope_theta"]
    B, T, D = h.shape
    x = rms(h, W[p + "input_layernorm.weight"], eps)
    sp = lambda t: t.view(B, T, H, D // H).transpose(1, 2)
    q, k, v = [sp(x @ W[p + f"self_attn.{c}_proj.weight"].T) for c in "qkv"]
    q, k = rope(q, theta), rope(k, theta)
    causal = torch.full((T, T), MIN).triu(1)
    h = h + attend(q, k, v, causal).transpose(1, 2).reshape(B, T, D) @ W[p + "self_attn.o_proj.weight"].T
    x = rms(h, W[p + "post_attention_layernorm.weight"], eps)
    return h + (F.silu(x @ W[p + "mlp.gate_proj.weight"].T) * (x @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
def cross(hq, hkv, p, cfg, mask):  # returns o_proj(attn) + hq, as HF's BltCrossAttention
    H, eps = cfg["num_attention_heads"], cfg["rms_norm_eps"]
    B, Q, D = hq.shape
    q = (rms(hq, W[p + "q_norm.weight"], eps) @ W[p + "q_proj.weight"].T).view(B, Q, H, D // H).transpose(1, 2)
    kv = rms(hkv, W[p + "k_norm.weight"], eps)
    k = (kv @ W[p + "k_proj.weight"].T).view(B, -1, H, D // H).transpose(1, 2)
    v = (kv @ W[p + "v_proj.weight"].T).view(B, -1, H, D // H).transpose(1, 2)
    return attend(q, k, v, mask).transpose(1, 2).reshape(B, Q, D) @ W[p + "o_proj.weight"].T + hq
def cross_mask(pids, K, N, as_queries, k):
    if as_queries: m = torch.arange(K)[None, :, None] == pids[:, None, :]; m = m.repeat_interleave(k, dim=1)
    else: m = pids[:, :, None] == torch.arange(K)[None, None, :]; m = m.repeat_interleave(k, dim=-1)
    return (1.0 - m.float()).masked_fill(~m, MIN)[:, None]
def pids_from_lengths(lengths, N):
    starts = torch.cat([torch.zeros(1, 1, dtype=torch.long), lengths.cumsum(-1)[:, :-1]], -1)
    return (starts[:, None, :] <= torch.arange(N)[None, :, None]).sum(-1) - 1

def forward(ids):
    B, N = ids.shape
    ec, dc, gc, pc = C["encoder_config"], C["decoder_config"], C["global_config"], C["patcher_config"]
    # patcher -> entropies -> patch lengths (HF patch_lengths_from_entropies)
    h = W["model.patcher.embed_tokens.weight"][ids]
    for i in range(pc["num_hidden_layers"]): h = layer(h, f"model.patcher.layers.{i}.", pc)
    logits = rms(h, W["model.patcher.norm.weight"], pc["rms_norm_eps"]) @ W["model.patcher.lm_head.weight"].T
    ent = torch.distributions.Categorical(logits=logits).entropy()
    mask = ent[:, 1:] > C["patching_threshold"]
    starts = torch.cat([torch.tensor([[0, 1]]), (torch.nonzero(mask[0])[:, 0] + 2)[None]], 1)
    ends = torch.cat([starts[:, 1:] - 1, torch.tensor([[N - 1]])], 1)
    lengths = ends - starts + 1
    if C.get("max_patch_length"):  # HF process_patch_lengths: split long patches, drop zeros
        m, out = C["max_patch_length"], []
        for L in lengths[0].tolist():
            if L <= 0: continue
            out += [m] * (L // m) + ([L % m] if L % m else [])
        lengths = torch.tensor([out])
    K, k = lengths.shape[1], C["cross_attn_k"]
    pids = pids_from_lengths(lengths, N)
    # encoder: embeddings + hash n-grams
    e = W["model.local_encoder.embed_tokens.weight"][ids]
    primes = [1000000007, 5915587277, 1500450271, 3267000013, 5754853343, 4093082899, 9576890767, 3628273133, 2860486313, 5463458053, 3367900313]
    V, idx = C["encoder_hash_byte_group_vocab"], 0
    for f in range(C["encoder_hash_byte_group_nb_functions"]):
        for g in C["encoder_hash_byte_group_size"]:
            padded = torch.cat([torch.zeros(B, g - 1, dtype=torch.int64), ids], 1)
            win = padded.unfold(1, g, 1)
            hv = torch.sum(win * torch.tensor(primes[f % 11], dtype=torch.int64) ** torch.arange(g), -1) % V
            e = e + W["model.encoder_hash_tok_embedding.weight"][hv + idx * V]; idx += 1
    h = e
    for i in range(ec["num_hidden_layers"]): h = layer(h, f"model.local_encoder.layers.{i}.", ec)
    D = h.shape[-1]
    red = torch.zeros(B, K, D).scatter_reduce(1, pids[..., None].expand(-1, -1, D), h, reduce="amax", include_self=False)
    pe = (red @ W["model.local_encoder.patch_embedding_projection.weight"].T).reshape(B, K * k, D)
    li = ec["num_hidden_layers"] - 1 if ec.get("cross_attn_all_layers") else 0
    pe = pe + cross(pe, h, f"model.local_encoder.cross_attn_layers.{li}.", ec, cross_mask(pids, K, N, True, k))
    g = pe.view(B, K, -1)
    if "model.global_transformer.token_embedding_projection.weight" in W: g = g @ W["model.global_transformer.token_embedding_projection.weight"].T
    for i in range(gc["num_hidden_layers"]): g = layer(g, f"model.global_transformer.layers.{i}.", gc)
    dp = pids_from_lengths(lengths[:, 1:], N)
    kv = (g @ W["model.local_decoder.patch_embedding_projection.weight"].T).reshape(B, K * k, -1)
    dm = cross_mask(dp, K, N, False, k)
    x = h
    for i in range(dc["num_hidden_layers"]):
        if i == 0 or dc.get("cross_attn_all_layers"): x = x + cross(x, kv, f"model.local_decoder.cross_attn_layers.{i}.", dc, dm)
        x = layer(x, f"model.local_decoder.layers.{i}.", dc)
    x = rms(x, W["model.local_decoder.norm.weight"], dc["rms_norm_eps"])
    return x @ W["lm_head.weight"].T

data = open(path, "rb").read()
window = C.get("bytelm_context", 24576)
nats = 0.0
with torch.no_grad():
    for s in range(0, len(data), window):
        ids = torch.tensor([[1] + [b + 4 for b in data[s:s + window]]])
        logits = forward(ids)[0, :-1]
        nats += F.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
print(json.dumps({"bytes": len(data), "bpb": nats / math.log(2) / len(data)}))
