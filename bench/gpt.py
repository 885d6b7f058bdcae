"""GPT benchmarks for bench/attention: one training step and KV-cache
generation, nnforge's ``models.GPT`` against the same network written in
PyTorch with the same weights (learned positions, pre-norm blocks, tied head).

- training step: forward, cross-entropy, backward, AdamW step; issue 7's
  shape (6 layers, d_model 384, 6 heads, T 256, batch 16);
- generation: 64 new tokens after a 64-token prompt, greedy, batch 1, each
  side with its own KV cache (ours: ``GPT.generate``; torch: the loop below).
``quick=True`` shrinks both to a toy size (smoke tests).
"""
from __future__ import annotations

import numpy as np

from .harness import Case

VOCAB = 65


def _torch_gpt(torch, ours):
    """The PyTorch twin of ``ours`` (an nnforge GPT with learned positions), weights
    copied by name."""
    nn, F = torch.nn, torch.nn.functional
    n_head = ours.blocks[0].attn.n_head

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn = nn.Module()
            self.attn.qkv, self.attn.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x, cache=None):
            b, t, d = x.shape
            q, k, v = self.attn.qkv(self.ln1(x)).split(d, dim=-1)
            q, k, v = (z.view(b, t, n_head, d // n_head).transpose(1, 2) for z in (q, k, v))
            if cache is not None:
                if cache.get("k") is not None:
                    k = torch.cat([cache["k"], k], 2)
                    v = torch.cat([cache["v"], v], 2)
                cache["k"], cache["v"] = k, v
            causal = k.shape[2] == t      # no cached keys: plain causal attention
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal and t > 1)
            x = x + self.attn.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.mlp(self.ln2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            d = ours.tok_emb.embedding_dim
            self.tok_emb = nn.Embedding(ours.vocab_size, d)
            self.pos = nn.Module()
            self.pos.weight = nn.Parameter(torch.zeros(ours.block_size, d))
            self.blocks = nn.ModuleList([Block(d) for _ in ours.blocks])
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, ours.vocab_size, bias=False)
            self.head.weight = self.tok_emb.weight

        def forward(self, idx, caches=None, past=0):
            x = self.tok_emb(idx) + self.pos.weight[past:past + idx.shape[1]]
            for i, blk in enumerate(self.blocks):
                x = blk(x, None if caches is None else caches[i])
            return self.head(self.ln_f(x))

    model = TorchGPT()
    state = {k: torch.from_numpy(v.detach().numpy().copy())
             for k, v in ours.state_dict().items()}
    model.load_state_dict(state, strict=False)
    return model


def cases(threads: int, quick: bool = False) -> list:
    import nnforge as nf
    layers, d, heads, t, batch = (2, 64, 2, 32, 4) if quick else (6, 384, 6, 256, 16)
    nf.manual_seed(0)
    ours = nf.models.GPT(VOCAB, block_size=max(t, 128), n_layer=layers, n_head=heads,
                         d_model=d)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, size=(batch, t + 1))
    x, y = nf.from_numpy(ids[:, :-1].copy()), nf.from_numpy(ids[:, 1:].copy())
    opt = nf.optim.AdamW(ours.parameters(), lr=1e-4)

    def ours_step():
        loss = nf.nn.functional.cross_entropy(ours(x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    prompt = [int(i) for i in ids[0, :64 if not quick else 8]]
    new = 64 if not quick else 8

    def ours_generate():
        ours.generate(prompt, new, temperature=0)

    peer_step = peer_generate = None
    try:
        import torch
        torch.set_num_threads(threads)
        tm = _torch_gpt(torch, ours)
        topt = torch.optim.AdamW(tm.parameters(), lr=1e-4)
        tx, ty = torch.from_numpy(ids[:, :-1].copy()), torch.from_numpy(ids[:, 1:].copy())

        def peer_step():
            loss = torch.nn.functional.cross_entropy(tm(tx).reshape(-1, VOCAB), ty.reshape(-1))
            topt.zero_grad()
            loss.backward()
            topt.step()

        @torch.no_grad()
        def peer_generate():
            caches = [{} for _ in tm.blocks]
            seq = torch.tensor([prompt])
            logits = tm(seq, caches)
            past = len(prompt)
            for _ in range(new):
                nxt = logits[0, -1].argmax().view(1, 1)
                logits = tm(nxt, caches, past)
                past += 1
    except ImportError:
        pass
    shape = f"{layers} layers d{d} T{t} b{batch}"
    return [Case(f"GPT training step ({shape})", ours_step, peer_step),
            Case(f"GPT generation, {new} tokens, KV cache ({layers} layers d{d})",
                 ours_generate, peer_generate,
                 extra={"tokens": new})]
