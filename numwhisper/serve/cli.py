"""``python -m numwhisper serve``: the HTTP service (PaddleX serving's API, plus OpenAI's transcription API).

``python -m numwhisper.serve`` runs the same command. The model is loaded once, warmed up (one short
decode, so that the first request does not pay for loading the compiled kernels), and shared
read-only by ``--workers`` inference threads. At most
``workers + queue_size`` requests are admitted at once; more get 503 at once. The routes and the
limits are in ``app``, the request inputs in ``sources``, the bodies in ``schema``, the settings in
``config``. Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np

from ..arguments import optional_int, str2bool
from ..decoding import COMPAT_MODES, DecodingOptions, options_for_mode
from ..errors import EXIT_INTERRUPTED, ModelFileError, print_error
from ..formats.hub import DEFAULT_MODEL
from ..inputs import FetchOptions
from ..mel import SAMPLE_RATE
from ..startup import deliver_interrupts
from ..threads import set_num_threads
from ..transcription import WhisperModel, load_model, transcribe
from .config import ServeConfig
from .sources import DEFAULT_MAX_AUDIO_SECONDS, SourcePolicy

INSTALL_SERVE = "pip install 'numwhisper[serve]'"
WARM_UP_TOKENS = 4


def build_parser() -> argparse.ArgumentParser:
    """The ``serve`` arguments."""
    defaults, fetch = ServeConfig(), FetchOptions()
    p = argparse.ArgumentParser(prog="numwhisper serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or path (default {DEFAULT_MODEL})")
    p.add_argument("--workers", type=int, default=defaults.workers, help="inference threads (default 1)")
    p.add_argument("--queue-size", type=int, default=defaults.queue_size,
                   help=f"requests that may wait for a worker; more get 503 (default {defaults.queue_size})")
    p.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                   help="let requests name server-side files inside DIR (repeatable; default: none)")
    p.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                   help=f"largest request body; larger get 413 (default {defaults.max_body_bytes})")
    p.add_argument("--max-fetch-bytes", type=int, default=defaults.max_body_bytes,
                   help=f"largest audio fetched from a URL (default {defaults.max_body_bytes})")
    p.add_argument("--fetch-timeout", type=float, default=fetch.timeout,
                   help=f"seconds a URL fetch may wait to connect or read (default {fetch.timeout:g})")
    p.add_argument("--max-redirects", type=int, default=fetch.max_redirects,
                   help=f"redirects a URL fetch follows (default {fetch.max_redirects})")
    p.add_argument("--max-audio-seconds", type=float, default=DEFAULT_MAX_AUDIO_SECONDS,
                   help=f"longest audio accepted (default {DEFAULT_MAX_AUDIO_SECONDS:g})")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per worker (default: the cores divided among the workers)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    decoding = p.add_argument_group("decoding (defaults are PaddleX's)")
    decoding.add_argument("--beam_size", type=optional_int, default=DecodingOptions().beam_size,
                          help="None for greedy decoding")
    decoding.add_argument("--language", default=None, help="language code or name (default: detect)")
    decoding.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    decoding.add_argument("--compat", default=None, choices=[c for c in COMPAT_MODES if c],
                          help="paddlex: PaddleX's bugs too; openai: openai-whisper's transcribe, its defaults "
                               "and result dict")
    decoding.add_argument("--word_timestamps", type=str2bool, default=False,
                          help="words in every answer's segments (the OpenAI route also gives them on "
                               "timestamp_granularities[]=word)")
    return p


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The service config the arguments ask for (ValueError for a bad value)."""
    fetch = FetchOptions(timeout=args.fetch_timeout, max_bytes=args.max_fetch_bytes, max_redirects=args.max_redirects)
    policy = SourcePolicy.create(args.allow_dir, fetch, args.max_audio_seconds)
    given = dict(beam_size=args.beam_size, language=args.language, task=args.task, compat=args.compat,
                 word_timestamps=args.word_timestamps)
    decoding = options_for_mode(**given)
    return ServeConfig(workers=args.workers, queue_size=args.queue_size, max_body_bytes=args.max_body_bytes,
                       threads=args.threads, policy=policy, decoding=decoding)


def warm_up(model: WhisperModel) -> None:
    """Decode a few tokens of one second of silence, so the compiled kernels are loaded before serving."""
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)  # [16000]
    transcribe(model, silence, DecodingOptions(language="en", beam_size=None, sample_len=WARM_UP_TOKENS))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the service until interrupted; 2 for bad arguments, a missing extra or an unusable model."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        config = config_from_args(args)
    except ValueError as err:
        return print_error(str(err))
    try:
        import uvicorn

        from .app import create_app
    except ImportError as err:
        return print_error(f"the HTTP service needs the serve extra ({err}): {INSTALL_SERVE}")
    deliver_interrupts()  # Ctrl-C stops the start even while Numba compiles (numwhisper.startup)
    try:
        model = load_model(args.model)
        if config.threads_per_worker is not None:
            set_num_threads(config.threads_per_worker)
        warm_up(model)
    except (ModelFileError, ValueError, OSError) as err:
        return print_error(str(err))
    except KeyboardInterrupt:
        print_error("interrupted before the service started")
        return EXIT_INTERRUPTED
    app = create_app(model, config, model_name=args.model)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                limit_concurrency=max(64, 4 * config.admission_limit), timeout_graceful_shutdown=5)
    return 0
