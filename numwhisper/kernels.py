"""Numba kernels for the Whisper transformer: layer norm, exact GELU, softmax, attention, conv1d.

Arrays are C-contiguous and updated in place where the docstring says so. Weight matrices may also
come as uint16 arrays holding IEEE half-precision bits (the decoder's 16-bit checkpoint tensors, see
model.py): ``_to_float32`` widens each element exactly where it is read, so such a product reads half
the bytes and gives the very same float32 result. Large matrix products are
left to NumPy's BLAS; these kernels do the element-wise and row-wise work around them, plus the
decoder's products with few rows (``linear_rows``), its masked attention over the kv cache and its
attention over the audio window (``cross_attention``).
Kernels named ``*_parallel`` split rows across threads (worth it for the encoder's 1500 rows); the
plain ones run on one thread. The decoder's few-row products, its cross-attention and its causal
attention split their work (weight rows, heads, beams) across threads too, which pays because
OpenMP threads spin briefly between parallel regions (``threads.tune``, applied when this module is
imported). The thread count is ``threads.set_num_threads``'s. Compiled code is
cached on disk next to this file (``cache=True``); ``error_model="numpy"`` keeps divisions free of
Python's zero checks so that loops vectorise.

Arithmetic follows PaddlePaddle's float32 kernels operation for operation (bias add, then scale;
``x * 0.5 * (1 + erf(x / sqrt(2)))``; layer norm with ``dims.LAYER_NORM_EPS``), with sums
accumulated in float64.
Arrays may also be float64 holding the float32-rounded values (the encoder runs some products in
float64, see model.py): every kernel first rounds its input to float32, so both give the same result.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import threads
from .dims import LAYER_NORM_EPS

threads.tune()  # before any parallel kernel starts the OpenMP runtime (see threads)

_F32_HALF = np.float32(0.5)
_F32_ONE = np.float32(1.0)
_F32_SQRT1_2 = np.float32(1.0 / math.sqrt(2.0))

# erf(x) ~= x * P(x^2) / Q(x^2) on |x| <= _ERF_CLAMP, evaluated in float64: a rational fit made for
# this module (Lawson-weighted least squares on the relative error); |error| < 6e-8 everywhere, i.e.
# within float32 rounding. Beyond the clamp erf(x) rounds to +-1 in float32. Unlike libm's erf (a
# call to math.erf), this vectorises: no branches, no calls.
_ERF_CLAMP = 3.925
_ERF_P0, _ERF_P1, _ERF_P2, _ERF_P3 = 1.12837911e+00, 2.00375261e-01, 5.06326803e-02, 3.71960773e-03
_ERF_P4, _ERF_P5, _ERF_P6 = 1.42179662e-04, -1.95657946e-06, 1.98684774e-08
_ERF_Q1, _ERF_Q2, _ERF_Q3, _ERF_Q4 = 5.10909588e-01, 1.15184262e-01, 1.43909438e-02, 9.60064087e-04

# exp(x) for x <= 0 as 2^n * e^r, |r| <= ln2/2, e^r by its degree-8 Taylor polynomial (float64,
# relative error < 1e-9), 2^n built from the exponent bits: vectorises, unlike a call to exp().
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_EXP_FLOOR = -700.0  # exp(-700) is 0 in float32; keeps 2^n a normal float64


@intrinsic
def _to_float32(typingctx, value):
    """A float32 as is, or the exact float32 of a half-precision number held as its uint16 bits
    (one ``fpext`` from LLVM's half type: vcvtph2ps on x86 with F16C)."""
    if value == types.float32:
        return types.float32(value), lambda context, builder, signature, args: args[0]
    if value == types.uint16:
        def widen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
        return types.float32(value), widen
    return None


@njit(cache=True, error_model="numpy", parallel=True)
def half_to_float32(bits):
    """float32 [N, D] of half-precision numbers given as their bits, uint16 [N, D]; exact."""
    out = np.empty(bits.shape, np.float32)
    for i in prange(bits.shape[0]):
        for j in range(bits.shape[1]):
            out[i, j] = _to_float32(bits[i, j])
    return out


@njit(cache=True, error_model="numpy", inline="always")
def _erf(x):
    """erf of a float64 scalar (see _ERF_* above)."""
    x = min(max(x, -_ERF_CLAMP), _ERF_CLAMP)
    t = x * x
    p = _ERF_P6
    p = p * t + _ERF_P5
    p = p * t + _ERF_P4
    p = p * t + _ERF_P3
    p = p * t + _ERF_P2
    p = p * t + _ERF_P1
    p = p * t + _ERF_P0
    q = _ERF_Q4
    q = q * t + _ERF_Q3
    q = q * t + _ERF_Q2
    q = q * t + _ERF_Q1
    q = q * t + 1.0
    return min(max(x * p / q, -1.0), 1.0)


@njit(cache=True, error_model="numpy", inline="always")
def _gelu(v):
    """Exact (erf) GELU of a float32 scalar, in Paddle's order: v * 0.5 * (1 + erf(v / sqrt 2))."""
    e = np.float32(_erf(np.float64(v * _F32_SQRT1_2)))
    return v * _F32_HALF * (_F32_ONE + e)


@njit(cache=True, error_model="numpy")
def _bias_gelu_row(x, b):
    """x = gelu(x + b) for one row, in place (one array in and out, so the loop vectorises)."""
    for j in range(x.shape[0]):
        x[j] = _gelu(np.float32(x[j]) + b[j])


@njit(cache=True, error_model="numpy")
def bias_gelu(x, b):
    """x = gelu(x + b) in place, x [N, D], b [D]; one thread."""
    for i in range(x.shape[0]):
        _bias_gelu_row(x[i], b)


@njit(cache=True, error_model="numpy", parallel=True)
def bias_gelu_parallel(x, b):
    """x = gelu(x + b) in place, x [N, D], b [D]; rows split across threads."""
    for i in prange(x.shape[0]):
        _bias_gelu_row(x[i], b)


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _layer_norm_row(x, w, b, out):
    """One row of layer norm: mean and variance in float64, affine part in float32."""
    n = x.shape[0]
    s = 0.0
    for j in range(n):
        s += np.float64(x[j])
    mean = s / n
    s2 = 0.0
    for j in range(n):
        c = np.float64(x[j]) - mean
        s2 += c * c
    rstd = 1.0 / math.sqrt(s2 / n + LAYER_NORM_EPS)
    for j in range(n):
        out[j] = np.float32((np.float64(x[j]) - mean) * rstd) * w[j] + b[j]


@njit(cache=True, error_model="numpy")
def layer_norm(x, w, b, out):
    """out = layer norm over the last axis of x [N, D] with weight and bias [D]; one thread."""
    for i in range(x.shape[0]):
        _layer_norm_row(x[i], w, b, out[i])


@njit(cache=True, error_model="numpy", parallel=True)
def layer_norm_parallel(x, w, b, out):
    """out = layer norm over the last axis of x [N, D]; rows split across threads."""
    for i in prange(x.shape[0]):
        _layer_norm_row(x[i], w, b, out[i])


@njit(cache=True, error_model="numpy")
def _add_bias_residual_rows(x, y, b, start, stop):
    """Rows start..stop of x += (y + b)."""
    for i in range(start, stop):
        for j in range(x.shape[1]):
            x[i, j] = x[i, j] + (np.float32(y[i, j]) + b[j])


@njit(cache=True, error_model="numpy")
def add_bias_residual(x, y, b):
    """x += (y + b) in place (the residual add after a Linear), x and y [N, D], b [D]; one thread."""
    _add_bias_residual_rows(x, y, b, 0, x.shape[0])


@njit(cache=True, error_model="numpy", parallel=True)
def add_bias_residual_parallel(x, y, b):
    """x += (y + b) in place, x and y [N, D], b [D]; rows split across threads."""
    for i in prange(x.shape[0]):
        _add_bias_residual_rows(x, y, b, i, i + 1)


@njit(cache=True, error_model="numpy")
def bias_scale(x, b, scale):
    """x = (x + b) * scale in place, x [N, D], b [D] (a query projection, then Whisper's d**-0.25)."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = (np.float32(x[i, j]) + b[j]) * scale


@njit(cache=True, error_model="numpy")
def scale_(x, scale):
    """x = x * scale in place, x [N, D] (a key projection, which has no bias)."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = np.float32(x[i, j]) * scale


@njit(cache=True, error_model="numpy")
def add_bias(x, b):
    """x = x + b in place, x [N, D], b [D]."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = np.float32(x[i, j]) + b[j]


@njit(cache=True)
def sequential_row_sums(x):
    """float32 [B, V] -> [B, 1]: each row summed front to back in float32 (paddle's CPU sum order).
    Rows go four at a time, so that four chains of additions overlap instead of running one after
    the other."""
    n = x.shape[0]
    out = np.empty((n, 1), dtype=np.float32)
    b = 0
    while b + 4 <= n:
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        s3 = np.float32(0.0)
        for v in range(x.shape[1]):
            s0 += x[b, v]
            s1 += x[b + 1, v]
            s2 += x[b + 2, v]
            s3 += x[b + 3, v]
        out[b, 0], out[b + 1, 0], out[b + 2, 0], out[b + 3, 0] = s0, s1, s2, s3
        b += 4
    for r in range(b, n):
        total = np.float32(0.0)
        for v in range(x.shape[1]):
            total += x[r, v]
        out[r, 0] = total
    return out


@njit(cache=True)
def top_k_rows(x, k):
    """The k largest entries of each row of x [B, V] (no NaN), best first, ties by lower index ->
    (values [B, k] of x's dtype, indices [B, k] int64). One pass per row keeping a sorted list."""
    n_rows, n = x.shape
    k = min(k, n)
    values = np.empty((n_rows, k), x.dtype)
    indices = np.empty((n_rows, k), np.int64)
    for b in range(n_rows):
        size = 0
        for j in range(n):
            v = x[b, j]
            if size == k and v <= values[b, k - 1]:
                continue  # not better than the k-th (an equal value comes later, so ranks lower)
            pos = min(size, k - 1)
            while pos > 0 and values[b, pos - 1] < v:
                values[b, pos] = values[b, pos - 1]
                indices[b, pos] = indices[b, pos - 1]
                pos -= 1
            values[b, pos] = v
            indices[b, pos] = j
            size = min(size + 1, k)
    return values, indices


@njit(cache=True, error_model="numpy")
def _row_max(x, n):
    """The largest of x[:n] (n >= 1, no NaN). Eight running maxima side by side, so that the
    comparisons vectorise (a single running max is a chain LLVM keeps scalar)."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = x[0]
    j = 0
    while j + 8 <= n:
        m0 = x[j] if x[j] > m0 else m0
        m1 = x[j + 1] if x[j + 1] > m1 else m1
        m2 = x[j + 2] if x[j + 2] > m2 else m2
        m3 = x[j + 3] if x[j + 3] > m3 else m3
        m4 = x[j + 4] if x[j + 4] > m4 else m4
        m5 = x[j + 5] if x[j + 5] > m5 else m5
        m6 = x[j + 6] if x[j + 6] > m6 else m6
        m7 = x[j + 7] if x[j + 7] > m7 else m7
        j += 8
    for i in range(j, n):
        m0 = x[i] if x[i] > m0 else m0
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _softmax_row(x, n, e, bits, two_k):
    """Softmax of float32 x[:n] in place, x[n:] set to 0 (masked). Scratch: e float64 [>= n], bits
    int64 [>= n] and two_k, the float64 view of bits. The exponent loop vectorises: np.floor keeps
    k a float64 (math.floor returns an int, which kept the loop scalar) and the floor is a select."""
    m = _row_max(x, n)
    for j in range(n):  # exp(x - m) = 2^k e^r with x - m = k ln2 + r
        d = np.float64(np.float32(x[j] - m))
        d = d if d > _EXP_FLOOR else _EXP_FLOOR
        k = np.floor(d * _LOG2E + 0.5)
        r = d - k * _LN2
        e[j] = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
            1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320))))))))
        bits[j] = (np.int64(k) + 1023) << 52  # the bits of the float64 2^k
    s = 0.0
    for j in range(n):
        v = e[j] * two_k[j]
        e[j] = v
        s += v
    inv = 1.0 / s
    for j in range(n):
        x[j] = np.float32(e[j] * inv)
    for j in range(n, x.shape[0]):
        x[j] = np.float32(0.0)


@njit(cache=True)
def _softmax_scratch(n):
    """_softmax_row's scratch for rows of up to n: e float64 [n], bits int64 [n] and two_k, the
    float64 view of bits."""
    bits = np.empty(n, np.int64)
    return np.empty(n, np.float64), bits, bits.view(np.float64)


@njit(cache=True, error_model="numpy")
def softmax(x):
    """Softmax over the last axis of x [N, D], in place; one thread."""
    e, bits, two_k = _softmax_scratch(x.shape[1])
    for i in range(x.shape[0]):
        _softmax_row(x[i], x.shape[1], e, bits, two_k)


@njit(cache=True, error_model="numpy", parallel=True)
def softmax_parallel(x):
    """Softmax over the last axis of x [N, D], in place; blocks of rows split across threads."""
    n = x.shape[0]
    block = 64
    for blk in prange((n + block - 1) // block):
        e, bits, two_k = _softmax_scratch(x.shape[1])
        for i in range(blk * block, min(n, (blk + 1) * block)):
            _softmax_row(x[i], x.shape[1], e, bits, two_k)


@njit(cache=True)
def _attention_scratch(n_keys, d_head):
    """Buffers for one attention row: weights w [n_keys] float32, _softmax_row's scratch (e, bits,
    two_k) and an output accumulator acc [d_head]."""
    e, bits, two_k = _softmax_scratch(n_keys)
    return np.empty(n_keys, np.float32), e, bits, two_k, np.empty(d_head, np.float32)


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _causal_sequence(q, k, v, n_head, offset, b, out):
    """Sequence b of causal_self_attention, every head."""
    n_query, d = q.shape[1], q.shape[2]
    d_head = d // n_head
    w, e, bits, two_k, acc = _attention_scratch(offset + n_query, d_head)
    for h in range(n_head):
        lo = h * d_head
        for i in range(n_query):
            n = offset + i + 1
            for j in range(n):
                s = np.float32(0.0)
                for c in range(d_head):
                    s += q[b, i, lo + c] * k[b, j, lo + c]
                w[j] = s
            _softmax_row(w[:n], n, e, bits, two_k)
            acc[:] = 0.0
            for j in range(n):
                wj = w[j]
                for c in range(d_head):
                    acc[c] += wj * v[b, j, lo + c]
            out[b, i, lo:lo + d_head] = acc


@njit(cache=True, error_model="numpy", parallel=True)
def causal_self_attention(q, k, v, n_head, offset):
    """Masked multi-head attention of new queries over cached keys, for the decoder.

    q [B, Tq, D] already scaled; k and v [B, >= offset + Tq, D] (k scaled), of which the first
    offset + Tq rows are valid. Query i (absolute position offset + i) sees keys 0 .. offset + i.
    Returns [B, Tq, D], heads side by side; the sequences (beams) are split across threads.
    """
    out = np.empty(q.shape, np.float32)
    for b in prange(q.shape[0]):
        _causal_sequence(q, k, v, n_head, offset, b, out)
    return out


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _cross_head(q, keys, values, h, out):
    """Head h of cross_attention for every row of q (a step's beams). Each row of the head's keys
    and values is read once for all rows while it is in cache; every score and output still sums
    over the same index in the same order as for one row alone."""
    n_head, d_head, n_ctx = keys.shape
    n = q.shape[0]
    lo = h * d_head
    w = np.zeros((n, n_ctx), np.float32)  # [N, S] scores, then softmax weights
    e, bits, two_k = _softmax_scratch(n_ctx)
    acc = np.zeros((n, d_head), np.float32)  # [N, d_head]
    for c in range(d_head):
        for i in range(n):
            qc = q[i, lo + c]
            for j in range(n_ctx):
                w[i, j] += qc * keys[h, c, j]
    for i in range(n):
        _softmax_row(w[i], n_ctx, e, bits, two_k)
    for j in range(n_ctx):
        for i in range(n):
            wj = w[i, j]
            for c in range(d_head):
                acc[i, c] += wj * values[h, j, c]
    out[:, lo:lo + d_head] = acc


@njit(cache=True, error_model="numpy", parallel=True)
def cross_attention(q, keys, values):
    """Attention of q [N, D] (scaled) over one audio window: keys [H, d_head, S] (scaled) and
    values [H, S, d_head] -> [N, D], heads side by side. Every row sees all S positions; the heads
    are split across threads. For the decoder's few rows (a step, a beam); model.py sends a prompt's
    many rows to BLAS.
    """
    n_head, d_head, n_ctx = keys.shape
    out = np.empty((q.shape[0], n_head * d_head), np.float32)
    for h in prange(n_head):
        _cross_head(q, keys, values, h, out)
    return out


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _dot_row(x, w, b, o):
    """x[b] . w[o] in float32."""
    s = np.float32(0.0)
    for i in range(x.shape[1]):
        s += x[b, i] * _to_float32(w[o, i])
    return s


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _linear_block(x, w, out, start, stop):
    """out[:, start:stop] = x @ w[start:stop].T, one weight row at a time: rows of x four at a time
    (each weight element read once for the four), the rest one by one. Every output is the same
    dot product either way."""
    n = x.shape[0]
    for o in range(start, stop):
        b = 0
        while b + 4 <= n:
            s0 = np.float32(0.0)
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            s3 = np.float32(0.0)
            for i in range(x.shape[1]):
                wi = _to_float32(w[o, i])
                s0 += x[b, i] * wi
                s1 += x[b + 1, i] * wi
                s2 += x[b + 2, i] * wi
                s3 += x[b + 3, i] * wi
            out[b, o] = s0
            out[b + 1, o] = s1
            out[b + 2, o] = s2
            out[b + 3, o] = s3
            b += 4
        for r in range(b, n):
            out[r, o] = _dot_row(x, w, r, o)


@njit(cache=True, error_model="numpy", parallel=True)
def linear_rows(x, w, n_blocks):
    """x [N, D_in] times w [D_out, D_in] (float32 or half-precision bits) transposed -> float32
    [N, D_out], for a few rows (the decoder's beams): each weight row is read once for all N rows,
    which BLAS does not manage for small N. The weight's rows are split in n_blocks blocks run in
    parallel (one per thread); every output is the same dot product for any n_blocks."""
    out = np.empty((x.shape[0], w.shape[0]), np.float32)
    block = (w.shape[0] + n_blocks - 1) // n_blocks
    for t in prange(n_blocks):
        _linear_block(x, w, out, t * block, min(w.shape[0], (t + 1) * block))
    return out


def conv1d_gelu(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """gelu(conv1d(x)) with kernel 3, padding 1: x [T, C_in] time-major, weight [C_out, C_in, 3]
    (PyTorch layout), bias [C_out] -> float32 [T_out, C_out], T_out = (T - 1) // stride + 1.

    One float64 BLAS product (the three shifted, strided copies of the zero-padded input side by
    side, times the weight arranged tap-major), rounded to float32 before the bias as in Paddle.
    """
    n_time, c_in = x.shape
    c_out = weight.shape[0]
    n_out = (n_time - 1) // stride + 1
    padded = np.zeros((n_time + 2, c_in), np.float64)  # [T + 2, C_in]
    padded[1:n_time + 1] = x
    span = stride * (n_out - 1) + 1
    cols = np.concatenate([padded[tap:tap + span:stride] for tap in range(3)], axis=1)  # [T_out, 3 C_in]
    taps = weight.transpose(2, 1, 0).reshape(3 * c_in, c_out).astype(np.float64)  # [3 C_in, C_out]
    y = cols @ taps  # [T_out, C_out] float64
    bias_gelu_parallel(y, bias)  # float32 values, held in float64
    return y.astype(np.float32)  # [T_out, C_out]



@njit(cache=True, error_model="numpy")
def dtw_path(x):
    """Dynamic time warping of a cost matrix x [N, M] (float64) -> the path int64 [2, L]: its row
    indices, then its column indices, from (0, 0) to (N - 1, M - 1).

    openai-whisper's DTW step for step: the accumulated cost is stored in float32 (each step adds in
    float64, then rounds); a cell takes its diagonal predecessor only when strictly cheaper than
    both others, else the one above when strictly cheaper than both, else the one to the left; the
    walk back from (N, M) follows the recorded moves, moving left along the top row and up along
    the first column.
    """
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, np.float32)
    trace = np.full((n + 1, m + 1), -1, np.int8)  # 0 diagonal, 1 from above, 2 from the left
    cost[0, 0] = 0.0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0 = cost[i - 1, j - 1]
            c1 = cost[i - 1, j]
            c2 = cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    trace[0, :] = 2
    trace[:, 0] = 1
    path = np.empty((2, n + m), np.int64)
    i, j, k = n, m, 0
    while i > 0 or j > 0:
        path[0, k] = i - 1
        path[1, k] = j - 1
        k += 1
        t = trace[i, j]
        if t == 0:
            i -= 1
            j -= 1
        elif t == 1:
            i -= 1
        else:
            j -= 1
    return path[:, :k][:, ::-1].copy()


@njit(cache=True, error_model="numpy", parallel=True)
def sliding_median_rows(padded, width):
    """Median of every ``width`` consecutive values along the rows of padded [R, F + width - 1]
    (float32, width odd) -> float32 [R, F]: the middle of each window sorted (insertion sort of a
    few values), i.e. one of the window's own values."""
    n_rows, n_out = padded.shape[0], padded.shape[1] - width + 1
    out = np.empty((n_rows, n_out), np.float32)
    for r in prange(n_rows):
        window = np.empty(width, np.float32)
        for f in range(n_out):
            for k in range(width):
                v = padded[r, f + k]
                i = k
                while i > 0 and window[i - 1] > v:
                    window[i] = window[i - 1]
                    i -= 1
                window[i] = v
            out[r, f] = window[width // 2]
    return out
