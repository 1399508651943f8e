"""The product dispatch of ``numwhisper.ops``: each path a product can take must give the values the
decoder's invariants need (chosen rows as the full product's, a beam's rows as each row alone)."""

import numpy as np
import pytest

from numwhisper import kernels, ops
from numwhisper.golden.tolerances import DECODER_CACHE_ATOL


def attention_inputs(n_rows: int, seed: int, n_head: int = 8, d_head: int = 64, n_ctx: int = 1500):
    """Random scaled queries [N, d], keys [H, d_head, S] and values [H, S, d_head], as cross_attention takes them."""
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((n_rows, n_head * d_head)) * 0.3).astype(np.float32)  # [N, d]
    keys = (rng.standard_normal((n_head, d_head, n_ctx)) * 0.3).astype(np.float32)  # [H, d_head, S]
    values = rng.standard_normal((n_head, n_ctx, d_head)).astype(np.float32)  # [H, S, d_head]
    return q, keys, values


@pytest.mark.parametrize("n_rows", [ops.FEW_ROWS + 1, 40, 150])  # the BLAS side of FEW_ROWS
def test_cross_attention_on_blas_agrees_with_the_kernel(n_rows):
    """Above FEW_ROWS query rows (a prompt pass), cross-attention runs as two batched BLAS products over
    the heads; each row must agree with what the kernel gives that row alone, up to summation order
    (measured 1.7e-7 here: the two are not equal bit for bit, which no invariant needs, since beams
    only ever take the kernel path)."""
    q, keys, values = attention_inputs(n_rows, seed=0)
    together = ops.cross_attention(q, keys, values)  # [N, d]
    alone = np.concatenate([kernels.cross_attention(q[i:i + 1], keys, values) for i in range(n_rows)])  # [N, d]
    assert np.abs(together - alone).max() <= DECODER_CACHE_ATOL


def test_cross_attention_kernel_rows_do_not_depend_on_the_batch():
    """Up to FEW_ROWS rows (a step's beams) every row is the kernel's, bit for bit the row alone."""
    q, keys, values = attention_inputs(ops.FEW_ROWS, seed=4)
    together = ops.cross_attention(q, keys, values)  # [N, d]
    alone = np.concatenate([ops.cross_attention(q[i:i + 1], keys, values) for i in range(q.shape[0])])  # [N, d]
    assert np.array_equal(together, alone), f"maxdiff {np.abs(together - alone).max():.3g}"


N_VOCAB = 51865  # the multilingual vocabulary: the largest product numwhisper makes


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("n_rows", [1, 2, ops.FEW_ROWS, ops.FEW_ROWS + 1, 40])
def test_linear_at_gives_the_rows_of_linear_bit_for_bit(dtype, n_rows):
    """The invariant holds for the shapes numwhisper multiplies (not for every shape: OpenBLAS sends
    tiny products, e.g. 2 x 384 x 100, to small-matrix kernels that sum in another order)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_rows, 384)).astype(np.float32)  # [N, d_in]
    n_out = ops.WIDEN_ROWS + N_VOCAB % ops.WIDEN_ROWS  # the vocabulary projection's last two blocks
    weight = rng.standard_normal((n_out, 384)).astype(dtype)  # [d_out, d_in]
    full = ops.linear(x, weight)  # [N, d_out]
    for rows in ([n_rows - 1], [0, n_rows - 1], list(range(n_rows))):
        picked = ops.linear_at(x, np.array(rows), weight)  # [P, d_out]
        assert np.array_equal(picked, full[rows]), (rows, np.abs(picked - full[rows]).max())


def test_a_float16_weight_gives_the_float32_products_exactly():
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((300, 64)).astype(np.float16)  # [d_out, d_in]
    for n_rows in (1, ops.FEW_ROWS, 100):
        x = rng.standard_normal((n_rows, 64)).astype(np.float32)  # [N, d_in]
        assert np.array_equal(ops.linear(x, weight), ops.linear(x, weight.astype(np.float32)))
