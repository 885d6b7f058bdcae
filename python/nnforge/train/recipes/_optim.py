"""The optimizer set-up the Transformer recipes share (gpt, bert, finetune, vit):
AdamW with weight decay on the weight matrices only (not on biases, norms'
gains or other vectors), and a linear warm-up followed by a cosine decay."""
from __future__ import annotations

import math

from ... import optim


def adamw_matrix_decay(params, lr: float, weight_decay: float, **kwargs) -> optim.AdamW:
    """AdamW over ``params`` with ``weight_decay`` on those of 2 or more dims, 0 on the rest."""
    params = list(params)
    return optim.AdamW([{"params": [p for p in params if p.ndim >= 2],
                         "weight_decay": weight_decay},
                        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                       lr=lr, **kwargs)


def warmup_cosine(optimizer, warmup: int, total: int,
                  floor: float = 0.0) -> optim.lr_scheduler.LambdaLR:
    """lr x (s + 1) / warmup for the first ``warmup`` steps, then a cosine from lr down
    to ``floor`` x lr at step ``total``."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return floor + (1 - floor) * 0.5 * (
            1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return optim.lr_scheduler.LambdaLR(optimizer, factor)
