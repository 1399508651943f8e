"""numwhisper's encoder and decoder step against the matmul floor, and its cold start.

    python bench/micro.py [--threads 2] [--model base] [--out bench/results/micro.md]

Floors: the encoder's FLOPs (convolutions, projections, attention products, counted from the
model's dims) at the sgemm throughput measured here (NumPy's BLAS on [1500, d] x [d, 4d]); a
decoder step's FLOPs likewise, and its bytes (every weight it reads, at its stored size - the
decoder's float16 matrices at 2 bytes - plus the window's cross-attention keys and values and the
self-attention cache) at the memory bandwidth measured here (a sum over 512 MiB).

Cold start: ``python -m numwhisper golden/audio/en_jfk.wav --model tiny.en`` twice in fresh
processes (the second finds Numba's on-disk cache warm; ``NUMBA_DEBUG_CACHE=1`` shows whether it
compiled anything), and import + load + first inference timed inside a fresh process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
JFK = REPO / "golden" / "audio" / "en_jfk.wav"


def _median_time(f, n: int) -> float:
    f()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def sgemm_gflops(d: int = 512) -> float:
    """Measured float32 BLAS throughput on the encoder's MLP shape, GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1500, d)).astype(np.float32)  # [1500, d]
    b = rng.standard_normal((d, 4 * d)).astype(np.float32)  # [d, 4d]
    return 2 * 1500 * d * 4 * d / _median_time(lambda: a @ b, 7) / 1e9


def bandwidth_gbs() -> float:
    """Measured read bandwidth, GB/s (a float32 sum over 512 MiB)."""
    x = np.ones(128 * 1024 * 1024, np.float32)
    return x.nbytes / _median_time(lambda: x.sum(), 5) / 1e9


def encoder_flops(dims) -> float:
    """FLOPs of one 30 s window through the encoder (convolutions, projections, attention)."""
    t, d = dims.n_audio_ctx, dims.n_audio_state
    conv = 2 * (2 * t) * dims.n_mels * 3 * d + 2 * t * d * 3 * d
    layer = 2 * t * d * d * 4 + 2 * t * d * 4 * d * 2 + 2 * 2 * t * t * d
    return conv + dims.n_audio_layer * layer


def step_weight_bytes(w) -> int:
    """Bytes of the weights one decoder step reads, as stored (cross-attention key/value weights are
    only used by cross_kv, positional embeddings one row at a time)."""
    skipped = (".cross_attn.key.", ".cross_attn.value.", "positional_embedding")
    return sum(t.nbytes for name, t in w.tensors.items()
               if name.startswith("decoder.") and not any(part in name for part in skipped))


def decoder_step(w, batch: int, n_past: int = 100) -> tuple:
    """(FLOPs, bytes read) of one decoder step for ``batch`` sequences with n_past cached tokens."""
    dims = w.dims
    d, s = dims.n_text_state, dims.n_audio_ctx
    weights = dims.n_text_layer * (4 * d * d + 2 * d * d + 8 * d * d) + dims.n_vocab * d
    attention = dims.n_text_layer * 2 * d * (n_past + s)  # self (per sequence) and cross keys/values
    flops = 2 * batch * (weights + attention)
    bytes_read = step_weight_bytes(w) + 4 * dims.n_text_layer * 2 * d * (batch * n_past + s)
    return flops, bytes_read


def cold_start(model: str) -> list:
    """[(what, seconds, note)] for two CLI runs and one in-process import + load + first inference."""
    rows = []
    env = dict(os.environ, NUMBA_DEBUG_CACHE="1")
    for k in (1, 2):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "numwhisper", str(JFK), "--model", model, "--verbose", "False"],
                              capture_output=True, text=True, env=env, cwd=str(REPO))
        wall = time.perf_counter() - start
        saved = sum("data saved" in line for line in proc.stdout.splitlines() + proc.stderr.splitlines())
        rows.append((f"`python -m numwhisper en_jfk.wav --model {model}` run {k}", wall,
                     f"exit {proc.returncode}; Numba cache entries written (compilations): {saved}"))
    code = ("import time; t0 = time.perf_counter(); import numwhisper; from numwhisper import transcribe; "
            "t1 = time.perf_counter(); m = numwhisper.load_model(%r); t2 = time.perf_counter(); "
            "r = m.transcribe(%r); t3 = time.perf_counter(); "
            "print(t1 - t0, t2 - t1, t3 - t2)") % (model, str(JFK))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO))
    wall = time.perf_counter() - start
    t_import, t_load, t_first = (float(v) for v in out.stdout.split()[-3:])
    rows.append((f"in-process: import + load {model} + transcribe en_jfk (11 s)", t_import + t_load + t_first,
                 f"import {t_import:.2f} s, load {t_load:.2f} s, first transcription {t_first:.2f} s; "
                 f"process wall {wall:.2f} s"))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="base")
    parser.add_argument("--cold-model", default="tiny.en")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "micro.md")
    args = parser.parse_args(argv)
    from numwhisper import model, threads
    from numwhisper.formats.hub import load_checkpoint
    from numwhisper.golden import files as golden
    from numwhisper.mel import N_FRAMES, pad_or_trim

    threads.set_num_threads(args.threads)
    rows = cold_start(args.cold_model)
    w = model.weights_from_checkpoint(load_checkpoint(args.model))
    dims = w.dims
    gflops, gbs = sgemm_gflops(dims.n_audio_state), bandwidth_gbs()
    mel = pad_or_trim(golden.load_mel("en_jfk")[0], N_FRAMES)  # [80, 3000]
    t_enc = _median_time(lambda: model.encode(w, mel), 5)
    features = model.encode(w, mel)
    cross = model.cross_kv(w, features)
    t_cross = _median_time(lambda: model.cross_kv(w, features), 5)
    lines = [f"# numwhisper micro-benchmark ({args.model}, {args.threads} threads)", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load averages {os.getloadavg()}; "
             f"sgemm {gflops:.0f} GFLOP/s, read bandwidth {gbs:.1f} GB/s (measured now).", "",
             "| stage | measured | floor | measured / floor | note |", "|---|---|---|---|---|"]
    enc = encoder_flops(dims)
    floor = enc / gflops / 1e9
    lines.append(f"| encoder, one 30 s window | {t_enc * 1e3:.0f} ms | {floor * 1e3:.0f} ms | {t_enc / floor:.2f} | "
                 f"{enc / 1e9:.1f} GFLOP at sgemm rate |")
    ck = 2 * 2 * dims.n_text_layer * dims.n_audio_ctx * dims.n_audio_state * dims.n_text_state
    lines.append(f"| cross-attention K/V, one window | {t_cross * 1e3:.0f} ms | {ck / gflops / 1e6:.0f} ms | "
                 f"{t_cross / (ck / gflops / 1e9):.2f} | {ck / 1e9:.1f} GFLOP |")
    for batch in (1, 5):
        cache = model.new_cache(w, cross, batch)
        _, cache = model.decode(w, np.full((batch, 100), 50258), cache)  # 100 tokens of context
        state = {"cache": cache}

        def step():
            _, state["cache"] = model.decode(w, np.full((batch, 1), 400), state["cache"])
            state["cache"] = model.reorder(state["cache"], list(range(batch)))

        t_step = float(np.median([_median_time(step, 1) for _ in range(40)]))
        flops, nbytes = decoder_step(w, batch)
        t_flop, t_mem = flops / gflops / 1e9, nbytes / gbs / 1e9
        lines.append(f"| decoder step, {batch} sequence{'s' if batch > 1 else ''} (100 cached tokens) | "
                     f"{t_step * 1e3:.1f} ms | {max(t_flop, t_mem) * 1e3:.1f} ms | {t_step / max(t_flop, t_mem):.2f} | "
                     f"{flops / 1e6:.0f} MFLOP ({t_flop * 1e3:.1f} ms), {nbytes / 1e6:.0f} MB read "
                     f"({t_mem * 1e3:.1f} ms) |")
    lines += ["", "| cold start | seconds | note |", "|---|---|---|"]
    lines += [f"| {what} | {sec:.2f} | {note} |" for what, sec, note in rows]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
