"""One measured run of one system: import, load, transcribe one clip, print one JSON line.

    python bench/worker.py SYSTEM CLIP.wav {greedy|beam5} --threads 2 --model-dir DIR [--words]

Run by ``bench/run.py`` in a fresh process per run (so the parent reads this process's peak RSS
from ``wait4``); SYSTEM is one of ``SYSTEMS``. Times are ``time.perf_counter`` from the start of
this module: ``import`` (the library), ``load`` (the model) and ``transcribe`` (reading the audio
included). Every system decodes at temperature 0 with no fallback, PaddleX's thresholds, previous
text as prompt, and detects the language on the first 30 s. ``numwhisper`` is numwhisper's API in
PaddleX's mode (its default), ``numwhisper-openai`` the same API with ``compat="openai"``
(openai-whisper's long-form loop; its temperature fallback switched off like every system's). The
command line (``numwhisper-cli`` in ``run.py``) is not run here: its whole process is the measured one.
``--words`` asks each system for word timestamps (``word_timestamps=True``; not PaddleX, which has
none) and reports how many words came back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

T0 = time.perf_counter()

SYSTEMS = ("numwhisper", "numwhisper-openai", "faster-whisper-fp32", "faster-whisper-int8", "openai-whisper", "paddlex")
BEAM = {"greedy": None, "beam5": 5}
COMPUTE_TYPES = {"faster-whisper-fp32": "float32", "faster-whisper-int8": "int8"}
NUMWHISPER_MODES = {"numwhisper": None, "numwhisper-openai": "openai"}  # system -> compat


def windows(seeks) -> int:
    """How many 30 s windows produced segments (distinct segment seeks); windows decoded as silence
    or with no segment are not counted."""
    return len(set(int(seek) for seek in seeks))


def run_numwhisper(clip: str, beam, threads: int, model_dir: str, words: bool = False, compat=None) -> dict:
    """numwhisper's Python API on the NumPy/Numba backend, in the mode ``compat`` names (None: PaddleX's).

    The temperature and its fallback are given explicitly: with compat="openai" the rest take
    openai-whisper's defaults (``decoding.openai_defaults``: fallback in 0.2 steps), and the bench wants
    temperature 0 alone in either mode, as every system runs it.
    """
    import numwhisper
    from numwhisper.threads import set_num_threads

    set_num_threads(threads)
    t_import = time.perf_counter()
    model = numwhisper.load_model(model_dir, device="cpu")
    t_load = time.perf_counter()
    temperature = 0.0 if compat == "openai" else 0  # each mode's own spelling of 0 (it shows in the result)
    result = model.transcribe(clip, beam_size=beam, temperature=temperature, temperature_increment_on_fallback=None,
                              word_timestamps=words, compat=compat)["result"]
    t_done = time.perf_counter()
    return dict(t_import=t_import, t_load=t_load, t_done=t_done, text=result["text"], language=result["language"],
                n_segments=len(result["segments"]), windows=windows([s["seek"] for s in result["segments"]]),
                n_words=sum(len(s.get("words", [])) for s in result["segments"]))


def run_faster_whisper(clip: str, beam, threads: int, model_dir: str, compute_type: str, words: bool = False) -> dict:
    """faster-whisper (CTranslate2) at ``compute_type``; its default temperature fallback switched off."""
    from faster_whisper import WhisperModel

    t_import = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1)
    t_load = time.perf_counter()
    segments, info = model.transcribe(clip, beam_size=beam or 1, temperature=0.0, best_of=1,
                                      condition_on_previous_text=True, vad_filter=False, word_timestamps=words)
    segments = list(segments)  # the generator decodes as it is consumed
    t_done = time.perf_counter()
    return dict(t_import=t_import, t_load=t_load, t_done=t_done, text="".join(s.text for s in segments),
                language=info.language, n_segments=len(segments), windows=windows([s.seek for s in segments]),
                n_words=sum(len(s.words or []) for s in segments))


def run_openai_whisper(clip: str, beam, threads: int, model_path: str, words: bool = False) -> dict:
    """openai-whisper on PyTorch (CPU, float32) from the converted checkpoint, with base's alignment heads
    (``load_model`` of a path would take every head of the decoder's second half)."""
    import torch
    import whisper

    torch.set_num_threads(threads)
    t_import = time.perf_counter()
    model = whisper.load_model(model_path, device="cpu")
    model.set_alignment_heads(whisper._ALIGNMENT_HEADS["base"])
    t_load = time.perf_counter()
    import soundfile as sf

    audio, _ = sf.read(clip, dtype="float32")  # [N] 16 kHz mono (openai-whisper would call ffmpeg on a path)
    result = whisper.transcribe(model, audio, temperature=0.0, beam_size=beam, best_of=None, fp16=False,
                                condition_on_previous_text=True, verbose=None, word_timestamps=words)
    t_done = time.perf_counter()
    return dict(t_import=t_import, t_load=t_load, t_done=t_done, text=result["text"], language=result["language"],
                n_segments=len(result["segments"]), windows=windows([s["seek"] for s in result["segments"]]),
                n_words=sum(len(s.get("words", [])) for s in result["segments"]))


def run_paddlex(clip: str, beam, threads: int, model_dir: str) -> dict:
    """PaddleX's own predictor (create_model) on paddle CPU, its inference.yml defaults, beam as asked."""
    import paddle
    from paddlex import create_model

    if hasattr(paddle, "set_num_threads"):
        paddle.set_num_threads(threads)
    else:
        paddle.base.core.set_num_threads(threads)
    t_import = time.perf_counter()
    wrapper = create_model(model_name="whisper_base", model_dir=model_dir, device="cpu")
    predictor = wrapper._predictor
    if beam is None:
        predictor.config.update({"beam_size": None, "patience": None})
    t_load = time.perf_counter()
    (result,) = list(wrapper.predict(clip))
    t_done = time.perf_counter()
    res = result["result"]
    return dict(t_import=t_import, t_load=t_load, t_done=t_done, text=res["text"], language=res["language"],
                n_segments=len(res["segments"]), windows=windows([s["seek"] for s in res["segments"]]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("clip")
    parser.add_argument("option", choices=sorted(BEAM))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-dir", required=True, help="model path or directory for this system")
    parser.add_argument("--words", action="store_true", help="word timestamps on (not for paddlex)")
    args = parser.parse_args(argv)
    beam = BEAM[args.option]
    if args.system in NUMWHISPER_MODES:
        out = run_numwhisper(args.clip, beam, args.threads, args.model_dir, args.words, NUMWHISPER_MODES[args.system])
    elif args.system.startswith("faster-whisper"):
        out = run_faster_whisper(args.clip, beam, args.threads, args.model_dir, COMPUTE_TYPES[args.system], args.words)
    elif args.system == "openai-whisper":
        out = run_openai_whisper(args.clip, beam, args.threads, args.model_dir, args.words)
    elif args.words:
        parser.error("paddlex has no word timestamps")
    else:
        out = run_paddlex(args.clip, beam, args.threads, args.model_dir)
    times = {k: round(out.pop(k) - T0, 4) for k in ("t_import", "t_load", "t_done")}
    out.update(import_s=times["t_import"], load_s=round(times["t_load"] - times["t_import"], 4),
               transcribe_s=round(times["t_done"] - times["t_load"], 4), python=sys.executable, pid=os.getpid())
    print(json.dumps(out, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
