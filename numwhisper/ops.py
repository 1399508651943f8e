"""Array-in, array-out operations of the transformer, each sent to the kernel or BLAS call that suits it.

``model`` describes the network with these; this module decides how each product runs:

- ``linear``: x [N, d_in] times a Linear weight [d_out, d_in] transposed. Few float32 rows (a
  decoder step, a beam: at most ``FEW_ROWS``) go to ``kernels.linear_rows``, which splits the
  weight's rows across threads and widens float16 weights element by element as it reads them;
  more rows go to BLAS, a float16 weight widened ``WIDEN_ROWS`` rows at a time.
- ``linear_at``: chosen rows of ``linear``, computing only those rows (a prompt's logits).
- ``layer_norm`` and ``add_bias_residual``: row kernels, split across threads from
  ``ROWS_FOR_THREADS`` rows on (the encoder's 1500).
- ``cross_attention``: few query rows through ``kernels.cross_attention``, more as two batched BLAS
  products over the heads.

Bit-for-bit invariants the decoder relies on (a beam must score exactly as the same tokens decoded
alone, a prompt's chosen logits as the full call's): a row of ``linear_at`` equals that row of
``linear``; up to ``FEW_ROWS`` rows, every row of ``linear`` and ``cross_attention`` is the row alone,
on one thread or several (``tests/test_ops.py``, and
``tests/test_model_parity.py::test_decoder_kernels_give_the_same_values_on_any_thread_count_and_batch``).
A prompt's rows through BLAS agree with the kernels only up to summation order, which nothing needs
to be exact: a prompt is decoded once per window, before the beams split.
"""

from __future__ import annotations

import numba
import numpy as np

from . import kernels

ROWS_FOR_THREADS = 64  # row kernels split rows across threads from this many rows on
FEW_ROWS = 16  # up to this many rows, weight products and cross-attention use kernels, not BLAS
WIDEN_ROWS = 4096  # a float16 weight matrix meets BLAS this many rows at a time (8 MB in float32)


# ---------------------------------------------------------------------------------- row kernels


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Layer norm over the rows of x [N, d] -> [N, d] of ``dtype``."""
    out = np.empty(x.shape, dtype)  # [N, d]
    norm = kernels.layer_norm_parallel if x.shape[0] >= ROWS_FOR_THREADS else kernels.layer_norm
    norm(x, weight, bias, out)
    return out


def add_bias_residual(x: np.ndarray, y: np.ndarray, bias: np.ndarray) -> None:
    """x += y + bias, in place: x [N, d] float32, y [N, d] (a product, without its bias)."""
    add = kernels.add_bias_residual_parallel if x.shape[0] >= ROWS_FOR_THREADS else kernels.add_bias_residual
    add(x, y, bias)


# ---------------------------------------------------------------------------------- products with a weight


def kernel_operand(weight: np.ndarray) -> np.ndarray:
    """A weight as Numba kernels take it: float32 as is, float16 as its uint16 bits (same memory)."""
    return weight.view(np.uint16) if weight.dtype == np.float16 else weight


def widened(weight: np.ndarray, dtype) -> np.ndarray:
    """A weight matrix [D_out, D_in] in ``dtype`` (float32 or float64) for a BLAS product."""
    if weight.dtype == np.float16:
        weight = kernels.half_to_float32(weight.view(np.uint16))  # [D_out, D_in]
    return weight.astype(dtype, copy=False)


def takes_few_row_kernel(x: np.ndarray) -> bool:
    """Whether ``linear`` sends x [N, d_in] to ``kernels.linear_rows`` (few float32 rows), not BLAS."""
    return x.dtype == np.float32 and x.shape[0] <= FEW_ROWS


def linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x [N, d_in] times a Linear weight [d_out, d_in] transposed -> [N, d_out] in x's dtype (no bias)."""
    if takes_few_row_kernel(x):
        return kernels.linear_rows(x, kernel_operand(weight), numba.get_num_threads())  # [N, d_out]
    return blas_linear(x, weight)  # [N, d_out]


def blas_linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x [N, d_in] times weight [d_out, d_in] transposed by BLAS -> [N, d_out], a float16 weight widened
    ``WIDEN_ROWS`` rows at a time (the token embedding would be 106 MB in float32 at once)."""
    if weight.dtype != np.float16 or weight.shape[0] <= WIDEN_ROWS:
        return x @ widened(weight, x.dtype).T  # [N, d_out]
    out = np.empty((x.shape[0], weight.shape[0]), x.dtype)  # [N, d_out]
    for start in range(0, weight.shape[0], WIDEN_ROWS):
        stop = min(start + WIDEN_ROWS, weight.shape[0])
        out[:, start:stop] = x @ widened(weight[start:stop], x.dtype).T  # [N, stop - start]
    return out


def linear_at(x: np.ndarray, rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Rows ``rows`` [P] of ``linear(x, weight)``, x [N, d_in] -> [P, d_out], computing only those rows
    where BLAS would take all N.

    Invariant: each row equals its row of the full product bit for bit. For the products numwhisper
    makes, BLAS gives a row the same bits whatever the number of rows from two rows up, but a single
    row goes to gemv, which sums in another order; so one row is computed twice. (Tiny products go to
    OpenBLAS's small-matrix kernels, where the invariant does not hold; ``tests/test_ops.py`` checks
    the vocabulary projection's shapes.) The few-row kernel's rows are all computed.
    """
    if takes_few_row_kernel(x):
        return linear(x, weight)[rows]  # [P, d_out]
    picked = np.concatenate([rows, rows]) if rows.shape[0] == 1 else rows  # [max(P, 2)]
    return blas_linear(x[picked], weight)[:rows.shape[0]]  # [P, d_out]


# ---------------------------------------------------------------------------------- attention


def cross_attention(q: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Attention of q [N, d] (scaled) over one window's keys [H, d_head, S] and values [H, S, d_head] -> [N, d].

    Few rows (a step, a beam) go through ``kernels.cross_attention``, heads split across threads;
    a prompt's rows as two batched BLAS products over the heads (the same values up to summation order).
    """
    if q.shape[0] <= FEW_ROWS:
        return kernels.cross_attention(q, keys, values)  # [N, d]
    n_head, d_head, n_ctx = keys.shape
    n = q.shape[0]
    qh = np.ascontiguousarray(q.reshape(n, n_head, d_head).transpose(1, 0, 2))  # [H, N, d_head]
    scores = np.matmul(qh, keys)  # [H, N, S]
    kernels.softmax(scores.reshape(n_head * n, n_ctx))
    out = np.matmul(scores, values)  # [H, N, d_head]
    return out.transpose(1, 0, 2).reshape(n, n_head * d_head)  # [N, d]
