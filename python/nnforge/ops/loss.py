"""Fused loss Functions: each computes its per-element loss, its reduction and
its gradients in one node.

A loss Function takes ``reduction`` ('none' | 'sum' | 'mean', and 'batchmean'
for KL divergence) and returns the reduced loss. Its backward turns the
upstream gradient into a per-element one (``_Reduction.upstream``: g itself,
g broadcast, or g / n) and multiplies it by the local derivative written
beside the forward formula. Argument checks (shapes, dtypes, ranges) are
done by the wrappers in ``nn.functional``; these Functions assume them.

Cross entropy is one Function for log-softmax and NLL together: its gradient
with respect to the logits is softmax(z) - q, q the (smoothed, weighted)
target distribution, so the backward never forms the softmax Jacobian.
"""
from __future__ import annotations

from ..autograd.function import Function


# ---------------------------------------------------------------- reductions
class _Reduction:
    """Reduces a per-element loss array and hands the upstream gradient back.

    'mean' divides by the number of elements, 'batchmean' by the size of the
    first dim (the whole sum for a 0-d loss), as in PyTorch."""

    def __init__(self, be, shape, reduction: str):
        self.shape, self.reduction = shape, reduction
        n = 1
        for s in shape:
            n *= s
        if reduction == "batchmean":
            n = shape[0] if shape else 1
        self.n = n

    def forward(self, be, loss):
        if self.reduction == "none":
            return loss
        total = be.sum(loss)
        return total if self.reduction == "sum" else be.divide(total, self.n)

    def upstream(self, be, g):
        """dL/dloss_i at the per-element shape (an array broadcastable to it)."""
        if self.reduction == "none":
            return g
        if self.reduction == "sum":
            return be.broadcast_to(g, self.shape)
        return be.broadcast_to(be.divide(g, self.n), self.shape)


# ---------------------------------------------------------------- regression
class L1(Function):
    # l = |x - t|;  dl/dx = sign(x - t) (0 at 0),  dl/dt = -dl/dx
    @staticmethod
    def forward(ctx, x, t, reduction):
        be = ctx.backend
        d = be.subtract(x, t)
        ctx.save_for_backward(d)
        ctx.red = _Reduction(be, d.shape, reduction)
        return ctx.red.forward(be, be.absolute(d))

    @staticmethod
    def backward(ctx, g):
        d, = ctx.saved_tensors
        be = ctx.backend
        gx = be.multiply(ctx.red.upstream(be, g), be.sign(d))
        return gx, (be.negative(gx) if ctx.needs_input_grad[1] else None), None


class Huber(Function):
    # d = x - t;  l = d^2 / 2 (|d| < delta), delta (|d| - delta / 2) otherwise;
    # dl/dx = clamp(d, -delta, delta),  dl/dt = -dl/dx
    @staticmethod
    def forward(ctx, x, t, delta, reduction):
        be = ctx.backend
        d = be.subtract(x, t)
        ad = be.absolute(d)
        loss = be.where(be.less(ad, delta), be.multiply(be.multiply(d, d), 0.5),
                        be.multiply(be.subtract(ad, 0.5 * delta), delta))
        ctx.save_for_backward(d)
        ctx.delta = delta
        ctx.red = _Reduction(be, d.shape, reduction)
        return ctx.red.forward(be, loss)

    @staticmethod
    def backward(ctx, g):
        d, = ctx.saved_tensors
        be = ctx.backend
        gx = be.multiply(ctx.red.upstream(be, g), be.clip(d, -ctx.delta, ctx.delta))
        return gx, (be.negative(gx) if ctx.needs_input_grad[1] else None), None, None


class SmoothL1(Function):
    # d = x - t;  l = d^2 / (2 beta) (|d| < beta), |d| - beta / 2 otherwise (beta > 0);
    # dl/dx = clamp(d / beta, -1, 1),  dl/dt = -dl/dx.  (Huber with delta = beta, / beta.)
    @staticmethod
    def forward(ctx, x, t, beta, reduction):
        be = ctx.backend
        d = be.subtract(x, t)
        ad = be.absolute(d)
        loss = be.where(be.less(ad, beta), be.divide(be.multiply(d, d), 2 * beta),
                        be.subtract(ad, 0.5 * beta))
        ctx.save_for_backward(d)
        ctx.beta = beta
        ctx.red = _Reduction(be, d.shape, reduction)
        return ctx.red.forward(be, loss)

    @staticmethod
    def backward(ctx, g):
        d, = ctx.saved_tensors
        be = ctx.backend
        slope = be.clip(be.divide(d, ctx.beta), -1, 1)
        gx = be.multiply(ctx.red.upstream(be, g), slope)
        return gx, (be.negative(gx) if ctx.needs_input_grad[1] else None), None, None


# ---------------------------------------------------------------- binary classification
def _clamped_log(be, p):
    """max(log p, -100) for p in [0, 1], without taking log 0 (-100 there)."""
    positive = be.greater(p, 0)
    return be.where(positive, be.maximum(be.log(be.where(positive, p, 1)), -100), -100)


class BinaryCrossEntropy(Function):
    # l = -w (t log x + (1 - t) log(1 - x)), each log clamped at -100 (PyTorch's guard);
    # dl/dx = w (x - t) / max(x (1 - x), 1e-12)       (PyTorch's EPSILON)
    # dl/dt = w (log(1 - x) - log x)   (clamped logs),   dl/dw = l / w
    @staticmethod
    def forward(ctx, x, t, w, reduction):
        be = ctx.backend
        log_x = _clamped_log(be, x)
        log_1mx = _clamped_log(be, be.subtract(1, x))
        loss = be.negative(be.add(be.multiply(t, log_x),
                                  be.multiply(be.subtract(1, t), log_1mx)))
        ctx.save_for_backward(x, t, w, log_x, log_1mx, loss)
        if w is not None:
            loss = be.multiply(loss, w)
        ctx.red = _Reduction(be, loss.shape, reduction)
        return ctx.red.forward(be, loss)

    @staticmethod
    def backward(ctx, g):
        x, t, w, log_x, log_1mx, unweighted = ctx.saved_tensors
        be = ctx.backend
        gl = ctx.red.upstream(be, g)
        gw = be.multiply(gl, unweighted) if ctx.needs_input_grad[2] else None
        if w is not None:
            gl = be.multiply(gl, w)
        gx = gt = None
        if ctx.needs_input_grad[0]:
            denom = be.maximum(be.multiply(x, be.subtract(1, x)), 1e-12)
            gx = be.divide(be.multiply(gl, be.subtract(x, t)), denom)
        if ctx.needs_input_grad[1]:
            gt = be.multiply(gl, be.subtract(log_1mx, log_x))
        return gx, gt, gw, None


class BinaryCrossEntropyWithLogits(Function):
    # With s = sigmoid and sp(z) = log(1 + e^z), so that -log s(x) = sp(-x) and
    # -log(1 - s(x)) = sp(x), and pw = 1 without pos_weight:
    #   l = w [pw t sp(-x) + (1 - t) sp(x)]
    #   dl/dx  = w [(1 - t) s(x) - pw t s(-x)]   (= w (s(x) - t) when pw = 1)
    #   dl/dt  = w [pw sp(-x) - sp(x)],   dl/dw = l / w,   dl/dpw = w t sp(-x)
    # sp(+-x) = max(+-x, 0) + log1p(e^-|x|): finite for any finite x, and no
    # cancellation (the form (1 - t) x + sp(-x) loses sp(x) for x << 0).
    @staticmethod
    def forward(ctx, x, t, w, pw, reduction):
        be = ctx.backend
        tail = be.log1p(be.exp(be.negative(be.absolute(x))))
        sp_pos = be.add(be.maximum(x, 0), tail)  # sp(x)
        sp_neg = be.add(be.maximum(be.negative(x), 0), tail)  # sp(-x)
        pos_t = t if pw is None else be.multiply(pw, t)
        loss = be.add(be.multiply(pos_t, sp_neg), be.multiply(be.subtract(1, t), sp_pos))
        ctx.save_for_backward(x, t, w, pw, pos_t, sp_pos, sp_neg, loss)
        if w is not None:
            loss = be.multiply(loss, w)
        ctx.red = _Reduction(be, loss.shape, reduction)
        return ctx.red.forward(be, loss)

    @staticmethod
    def backward(ctx, g):
        x, t, w, pw, pos_t, sp_pos, sp_neg, unweighted = ctx.saved_tensors
        be = ctx.backend
        gl = ctx.red.upstream(be, g)
        gw = be.multiply(gl, unweighted) if ctx.needs_input_grad[2] else None
        if w is not None:
            gl = be.multiply(gl, w)
        gx = gt = gpw = None
        if ctx.needs_input_grad[0]:
            d = be.subtract(be.multiply(be.subtract(1, t), be.sigmoid(x)),
                            be.multiply(pos_t, be.sigmoid(be.negative(x))))
            gx = be.multiply(gl, d)
        if ctx.needs_input_grad[1]:
            pos = sp_neg if pw is None else be.multiply(pw, sp_neg)
            gt = be.multiply(gl, be.subtract(pos, sp_pos))
        if ctx.needs_input_grad[3]:
            gpw = be.multiply(gl, be.multiply(t, sp_neg))
        return gx, gt, gw, gpw, None


# ---------------------------------------------------------------- distributions
class KLDiv(Function):
    # Input x = log q; target t = p (or log p with log_target):
    #   l = p (log p - x), 0 where p = 0 (xlogy);   dl/dx = -p,  dl/dt = log p + 1 - x
    #   (at p = 0, log p is taken as 0 in dl/dt: xlogy's rule; the true limit is -inf)
    #   log_target:  l = e^t (t - x);               dl/dx = -e^t, dl/dt = e^t (t - x + 1)
    @staticmethod
    def forward(ctx, x, t, reduction, log_target):
        be = ctx.backend
        if log_target:
            p = be.exp(t)
            loss = be.multiply(p, be.subtract(t, x))
        else:
            p = t
            zero = be.equal(t, 0)
            plogp = be.where(zero, 0, be.multiply(t, be.log(be.where(zero, 1, t))))
            loss = be.subtract(plogp, be.multiply(t, x))
        ctx.save_for_backward(x, t, p)
        ctx.log_target = log_target
        ctx.red = _Reduction(be, loss.shape, reduction)
        return ctx.red.forward(be, loss)

    @staticmethod
    def backward(ctx, g):
        x, t, p = ctx.saved_tensors
        be = ctx.backend
        gl = ctx.red.upstream(be, g)
        gx = be.negative(be.multiply(gl, p)) if ctx.needs_input_grad[0] else None
        gt = None
        if ctx.needs_input_grad[1]:
            if ctx.log_target:
                gt = be.multiply(gl, be.multiply(p, be.add(be.subtract(t, x), 1)))
            else:
                # log p taken as 0 at p = 0 (xlogy's convention), which keeps it finite
                zero = be.equal(t, 0)
                log_t = be.where(zero, 0, be.log(be.where(zero, 1, t)))
                gt = be.multiply(gl, be.subtract(be.add(log_t, 1), x))
        return gx, gt, None, None


# ---------------------------------------------------------------- multi-class
def _class_view(be, w, ndim):
    """A (C,) array shaped (1, C, 1, ...) against (N, C, d1, ...)."""
    return be.reshape(w, (1, -1) + (1,) * (ndim - 2))


def _picked_weights(be, target, weight, ignore_index, dtype):
    """For (N, 1, d1, ...) class indices: (a safe index for every target,
    the per-target weight w_i = weight[y_i], 0 at ignore_index, the valid mask)."""
    valid = be.not_equal(target, ignore_index)
    safe = be.where(valid, target, 0)
    if weight is None:
        w = be.astype(valid, dtype)
    else:
        w = be.where(valid, be.take(weight, safe, 0), 0)
    return safe, w, valid


def _mean_scale(be, total_weight):
    """1 / sum(w_i), or 0 when every target is ignored (the loss is then nan and
    its gradient zero, as in PyTorch)."""
    return be.where(be.equal(total_weight, 0), 0, be.reciprocal(total_weight))


class NllLoss(Function):
    # l_i = -w_i logp[i, y_i]  (w_i = weight[y_i], 0 at ignore_index); 'mean' divides by sum w_i.
    # dL/dlogp[i, c] = -g_i w_i [c = y_i];  dL/dweight[c] = -sum_{i: y_i = c} g_i logp[i, c]
    # ('mean': minus L count_c / sum w_i, count_c the counted targets of class c).
    @staticmethod
    def forward(ctx, logp, target, weight, ignore_index, reduction):
        be = ctx.backend
        target = be.expand_dims(target, 1)
        safe, w, valid = _picked_weights(be, target, weight, ignore_index, logp.dtype)
        picked = be.take_along_axis(logp, safe, 1)
        loss = be.negative(be.multiply(picked, w))
        ctx.save_for_backward(safe, w, valid, picked)
        ctx.meta = (logp.shape, logp.dtype, reduction)
        if reduction == "none":
            return be.squeeze(loss, axis=1)
        return _weighted_reduction(be, ctx, loss, w, reduction)

    @staticmethod
    def backward(ctx, g):
        safe, w, valid, picked = ctx.saved_tensors
        be = ctx.backend
        shape, dtype, reduction = ctx.meta
        gi = _class_upstream(be, ctx, g, reduction)  # broadcastable to (N, 1, d1, ...)
        glogp = gw = None
        if ctx.needs_input_grad[0]:
            glogp = be.zeros(shape, dtype)
            be.put_along_axis(glogp, safe, be.negative(be.multiply(gi, w)), 1)
        if ctx.needs_input_grad[2]:
            contrib = be.negative(be.multiply(be.multiply(gi, picked), be.astype(valid, dtype)))
            gw = _per_class_sum(be, safe, contrib, shape[1], dtype)
            if reduction == "mean":
                counts = _per_class_sum(be, safe, be.astype(valid, dtype), shape[1], dtype)
                gw = be.subtract(gw, be.multiply(counts, be.multiply(gi, ctx.mean)))
        return glogp, None, gw, None, None


def _weighted_reduction(be, ctx, loss, w, reduction):
    """'sum' of the per-sample losses, or their 'mean' weighted as PyTorch's: divided
    by the total weight sum_i w_i (kept on ctx, with the mean, for backward)."""
    total = be.sum(loss)
    if reduction == "sum":
        return total
    ctx.total_weight = be.sum(w)
    ctx.mean = be.divide(total, ctx.total_weight)
    return ctx.mean


def _class_upstream(be, ctx, g, reduction):
    if reduction == "none":
        return be.expand_dims(g, 1)
    if reduction == "sum":
        return g
    return be.multiply(g, _mean_scale(be, ctx.total_weight))


def _per_class_sum(be, safe, values, n_classes, dtype):
    """out[c] = sum of ``values`` over the positions whose index is c."""
    out = be.zeros((n_classes,), dtype)
    idx = be.reshape(safe, (-1,))
    vals = be.reshape(be.broadcast_to(values, safe.shape), (-1,))
    be.scatter_add(out, 0, idx, vals)
    return out


class CrossEntropy(Function):
    # Fused log-softmax + NLL over class indices, logits z of shape (N, C, d1, ...),
    # with label smoothing e: the target distribution of sample i is
    #   q_ic = (1 - e) [c = y_i] + e / C,  and  l_i = -sum_c weight_c q_ic logp_ic  (weighted
    # as PyTorch does: the NLL part by w_i = weight[y_i], the smoothing part by weight_c):
    #   l_i = (1 - e) w_i (lse_i - z[i, y_i]) + e / C (W lse_i - sum_c weight_c z_ic),
    #   0 at ignore_index, lse_i = log sum_c exp z_ic, W = sum_c weight_c;
    # 'mean' divides by sum_i w_i. With p = softmax(z):
    #   dl_i/dz_ik = p_ik [(1 - e) w_i + e W / C] - (1 - e) w_i [k = y_i] - e weight_k / C
    # which is p - q without weights. The backend does both passes in one kernel
    # each (be.cross_entropy_forward/backward); dL/dweight follows from l_i's
    # linear form in weight.
    @staticmethod
    def forward(ctx, z, target, weight, ignore_index, reduction, smoothing):
        be = ctx.backend
        try:
            loss, lse, w = be.cross_entropy_forward(z, target, weight, ignore_index, smoothing)
        except IndexError as e:
            raise IndexError(f"cross_entropy: {e}") from None
        ctx.save_for_backward(z, target, weight, lse, w)
        ctx.meta = (ignore_index, reduction, smoothing)
        if reduction == "none":
            return loss
        return _weighted_reduction(be, ctx, loss, w, reduction)

    @staticmethod
    def backward(ctx, g):
        z, target, weight, lse, w = ctx.saved_tensors
        be = ctx.backend
        ignore_index, reduction, e = ctx.meta
        if reduction == "mean":
            # 1 / sum w_i; when every target is ignored this is inf, but the kernel
            # never multiplies by it: an ignored position's gradient is 0 (as in PyTorch).
            g = be.divide(g, ctx.total_weight)
        gz = gw = None
        if ctx.needs_input_grad[0]:
            gz = be.cross_entropy_backward(z, target, weight, lse, w, g, ignore_index, e)
        if ctx.needs_input_grad[2]:
            gw = _cross_entropy_weight_grad(be, ctx, z, target, lse, g)
        return gz, None, gw, None, None, None


def _cross_entropy_weight_grad(be, ctx, z, target, lse, g):
    """dL/dweight_c = -(1 - e) sum_{i: y_i = c} g_i logp[i, c] - e / C sum_i g_i logp_ic
    (counted targets only); 'mean' also has -L count_c / sum_i w_i."""
    ignore_index, reduction, e = ctx.meta
    n_classes = z.shape[1]
    dtype = z.dtype
    target = be.expand_dims(target, 1)
    valid = be.not_equal(target, ignore_index)
    safe = be.where(valid, target, 0)
    logp = be.subtract(z, be.expand_dims(lse, 1))
    if reduction == "mean":
        g = be.where(be.equal(ctx.total_weight, 0), 0, g)  # not inf * 0 when all are ignored
    gi = be.multiply(be.expand_dims(be.broadcast_to(g, lse.shape), 1), be.astype(valid, dtype))
    picked = be.take_along_axis(logp, safe, 1)
    gw = _per_class_sum(be, safe, be.negative(be.multiply(gi, picked)), n_classes, dtype)
    gw = be.multiply(gw, 1.0 - e)
    if e > 0.0:
        axes = (0,) + tuple(range(2, logp.ndim))
        gw = be.subtract(gw, be.multiply(be.sum(be.multiply(logp, gi), axis=axes), e / n_classes))
    if reduction == "mean":
        counts = _per_class_sum(be, safe, be.astype(valid, dtype), n_classes, dtype)
        gw = be.subtract(gw, be.multiply(counts, be.multiply(g, ctx.mean)))
    return gw


class SoftCrossEntropy(Function):
    # Cross entropy against class probabilities t (the logits' shape), smoothing e:
    #   q = (1 - e) t + e / C,   l_i = -sum_c weight_c q_ic logp_ic ;  'mean' divides by the
    #   number of samples (N d1 ...), not by weights (PyTorch's rule for probabilities).
    #   dl_i/dz_ik = p_ik sum_c weight_c q_ic - weight_k q_ik
    #   dl_i/dt_ik = -(1 - e) weight_k logp_ik,   dl_i/dweight_k = -q_ik logp_ik
    @staticmethod
    def forward(ctx, z, t, weight, reduction, smoothing, class_dim):
        be = ctx.backend
        n_classes = z.shape[class_dim]
        logp = be.log_softmax(z, class_dim)
        q = t if smoothing == 0.0 else be.add(be.multiply(t, 1.0 - smoothing),
                                               smoothing / n_classes)
        w_view = None
        if weight is not None:
            w_view = weight if z.ndim == 1 else _class_view(be, weight, z.ndim)
        wq = q if w_view is None else be.multiply(q, w_view)
        loss = be.negative(be.sum(be.multiply(logp, wq), axis=class_dim))
        ctx.save_for_backward(logp, q, wq, w_view)
        ctx.meta = (smoothing, class_dim)
        ctx.red = _Reduction(be, loss.shape, reduction)
        return ctx.red.forward(be, loss)

    @staticmethod
    def backward(ctx, g):
        logp, q, wq, w_view = ctx.saved_tensors
        be = ctx.backend
        e, cd = ctx.meta
        gi = be.expand_dims(ctx.red.upstream(be, g), cd)
        gz = gt = gw = None
        if ctx.needs_input_grad[0]:
            mass = be.sum(wq, axis=cd, keepdims=True)
            gz = be.multiply(gi, be.subtract(be.multiply(be.exp(logp), mass), wq))
        if ctx.needs_input_grad[1]:
            wl = logp if w_view is None else be.multiply(logp, w_view)
            gt = be.multiply(gi, be.multiply(wl, -(1.0 - e)))
        if ctx.needs_input_grad[2]:
            axes = tuple(d for d in range(logp.ndim) if d != cd)
            gw = be.negative(be.sum(be.multiply(gi, be.multiply(q, logp)), axis=axes))
        return gz, gt, gw, None, None, None
