"""Multi-head attention (Vaswani et al. 2017, section 3.2), PyTorch's
``nn.MultiheadAttention``: same arguments, parameter names and layouts, masks.

For queries Q (L, E), keys K (S, E_k) and values V (S, E_v), each of the
``num_heads`` heads h attends in its own d = E / num_heads dimensional
subspace and the heads' outputs are concatenated and mixed:

    head_h = softmax(Q_h K_h^T / sqrt(d) + mask) V_h,  Q_h = Q W_q,h + b_q,h  (etc.)
    output = concat(head_1 .. head_H) W_o^T + b_o

W_q, W_k, W_v are packed row-wise in ``in_proj_weight`` (3E, E) when the
three inputs have the embedding's size, else kept as ``q_proj_weight``,
``k_proj_weight`` (E, kdim) and ``v_proj_weight`` (E, vdim); W_o is
``out_proj``. Masks follow PyTorch: in ``attn_mask`` (L, S) or
(N * num_heads, L, S) and ``key_padding_mask`` (N, S) a boolean True means
*may not attend*, a float is added to the scores.

Without ``need_weights`` the heads run in the fused attention kernel
(``F.scaled_dot_product_attention``: the L x S scores are never stored); with
it the weights are formed explicitly, as they must be returned.
"""
from __future__ import annotations

import math

from ..dtypes import bool_
from ..ops import creation
from ..ops.shape import cat
from ..tensor import Tensor
from . import functional as F
from . import init
from .linear import Linear
from .module import Module
from .parameter import Parameter

__all__ = ["MultiheadAttention"]


class MultiheadAttention(Module):
    """``MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True,
    add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None,
    batch_first=False, device=None, dtype=None)``."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, got "
                             f"{embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first = batch_first
        self.add_zero_attn = add_zero_attn
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(creation.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(creation.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(creation.empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(creation.empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # PyTorch's: Xavier-uniform projections, zero biases, Xavier-normal bias_k/v.
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    # ---- forward
    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None,
                need_weights: bool = True, attn_mask=None, average_attn_weights: bool = True,
                is_causal: bool = False):
        """query (L, N, E) ((N, L, E) with batch_first; (L, E) unbatched), key (S, N,
        kdim), value (S, N, vdim) -> (output like query, weights (N, L, S) averaged over
        heads, (N, num_heads, L, S) with ``average_attn_weights=False``, or None)."""
        q_in, k_in, v_in, unbatched = self._batch_first_inputs(query, key, value)
        n, tgt, src = q_in.shape[0], q_in.shape[1], k_in.shape[1]
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: is_causal is a hint that attn_mask is the "
                               "causal mask; pass attn_mask as well (e.g. "
                               "nn.Transformer.generate_square_subsequent_mask(L))")
        if unbatched and key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
        q, k, v = self._project(q_in, k_in, v_in)              # (N, L or S, E)
        if self.bias_k is not None:                            # one more key: bias_k / bias_v
            k = cat([k, self.bias_k.expand(n, 1, self.embed_dim)], 1)
            v = cat([v, self.bias_v.expand(n, 1, self.embed_dim)], 1)
        h, d = self.num_heads, self.head_dim
        q = q.reshape(n, tgt, h, d).transpose(1, 2)            # (N, H, L, d)
        k = k.reshape(n, k.shape[1], h, d).transpose(1, 2)     # (N, H, S', d)
        v = v.reshape(n, v.shape[1], h, d).transpose(1, 2)
        if self.add_zero_attn:                                 # one more key of zeros
            z = creation.zeros(n, h, 1, d, dtype=q.dtype, device=q.device)
            k, v = cat([k, z], 2), cat([v, z], 2)
        extra = k.shape[2] - src
        # mask: None, boolean "may attend" or additive float, broadcastable to (N, H, L, S')
        mask = self._merged_mask(attn_mask, key_padding_mask, n, tgt, src, extra, q.dtype)
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
            if mask is not None:
                scores = (scores.masked_fill(~mask, -math.inf) if mask.dtype == bool_
                          else scores + mask)
            weights = F.softmax(scores, dim=-1)
            if p > 0:
                weights = F.dropout(weights, p, True)
            out = weights @ v
        else:
            # is_causal promises attn_mask is the causal mask: the kernel then skips it.
            causal_only = is_causal and key_padding_mask is None and extra == 0
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if causal_only else mask,
                                                 dropout_p=p, is_causal=causal_only)
            weights = None
        out = self.out_proj(out.transpose(1, 2).reshape(n, tgt, self.embed_dim))
        if weights is not None and average_attn_weights:
            weights = weights.mean(1)
        if unbatched:
            out = out.squeeze(0)
            weights = weights.squeeze(0) if weights is not None else None
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _batch_first_inputs(self, query, key, value):
        cls = "MultiheadAttention"
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{cls}: {name} must be a Tensor, got {type(t).__name__}")
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{cls}: query, key and value must all be 3-D (batched) or 2-D "
                             f"(unbatched), got shapes {tuple(query.shape)}, {tuple(key.shape)}, "
                             f"{tuple(value.shape)}")
        for name, t, size in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            if t.shape[-1] != size:
                raise ValueError(f"{cls}: {name} must have {size} features in its last dim, "
                                 f"got shape {tuple(t.shape)}")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"{cls}: key and value must have the same batch and sequence "
                             f"sizes, got shapes {tuple(key.shape)} and {tuple(value.shape)}")
        if key.shape[0] != query.shape[0]:
            raise ValueError(f"{cls}: query and key have different batch sizes "
                             f"({query.shape[0]} and {key.shape[0]})")
        return query, key, value, unbatched

    def _project(self, query, key, value):
        e = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:      # self-attention: one GEMM for q, k and v
                qkv = F.linear(query, w, b)
                return qkv[..., :e], qkv[..., e:2 * e], qkv[..., 2 * e:]
            wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _merged_mask(self, attn_mask, key_padding_mask, n, tgt, src, extra, dtype):
        """attn_mask and key_padding_mask as one mask broadcastable to (N, H, L,
        S + extra): boolean "may attend" when both are boolean (True in PyTorch's masks
        means "may not"), else additive float with -inf for the boolean's True
        entries (PyTorch merges mixed masks the same way); None without masks."""
        cls = "MultiheadAttention"
        parts = []
        if attn_mask is not None:
            if attn_mask.ndim == 2:
                if tuple(attn_mask.shape) != (tgt, src):
                    raise ValueError(f"{cls}: 2-D attn_mask must have shape ({tgt}, {src}), got "
                                     f"{tuple(attn_mask.shape)}")
                parts.append(attn_mask.reshape(1, 1, tgt, src))
            elif attn_mask.ndim == 3:
                if tuple(attn_mask.shape) != (n * self.num_heads, tgt, src):
                    raise ValueError(f"{cls}: 3-D attn_mask must have shape "
                                     f"({n * self.num_heads}, {tgt}, {src}), got "
                                     f"{tuple(attn_mask.shape)}")
                parts.append(attn_mask.reshape(n, self.num_heads, tgt, src))
            else:
                raise ValueError(f"{cls}: attn_mask must be 2-D or 3-D, got shape "
                                 f"{tuple(attn_mask.shape)}")
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, src):
                raise ValueError(f"{cls}: key_padding_mask must have shape ({n}, {src}), got "
                                 f"{tuple(key_padding_mask.shape)}")
            parts.append(key_padding_mask.reshape(n, 1, 1, src))
        if not parts:
            return None
        if all(m.dtype == bool_ for m in parts):
            allowed = ~parts[0] if len(parts) == 1 else ~(parts[0] | parts[1])
            # the bias_k / zero-attention keys are never masked
            return F.pad(allowed, (0, extra), value=True) if extra else allowed
        total = None
        for m in parts:
            f = (creation.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, -math.inf)
                 if m.dtype == bool_ else m.to(dtype))
            total = f if total is None else total + f
        return F.pad(total, (0, extra)) if extra else total
