"""PaddleX's pipeline facade: ``create_pipeline("multilingual_speech_recognition")``.

The pipeline config is PaddleX's YAML for this pipeline; numwhisper reads and writes the few keys
it has without a YAML library (``key: value`` lines, two-space nesting, ``null``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, Optional, Union

from .audio import open_samples
from .decoding import DecodingOptions, options_for_mode
from .devices import Device, resolve_device
from .formats.hub import DEFAULT_MODEL
from .inputs import AudioLimits, WorkItem, expand_inputs
from .result import Result
from .transcription import WhisperModel, load_model, transcribe_audio

PIPELINE_NAME = "multilingual_speech_recognition"
CONFIG_FILE = f"{PIPELINE_NAME}.yaml"
# PaddleX model names -> numwhisper's model (only base is available as weights here).
PADDLEX_MODEL_NAMES = {"whisper_base": "base", "whisper_tiny.en": "tiny.en", "whisper_tiny_en": "tiny.en"}


def default_config(model: str = DEFAULT_MODEL) -> dict:
    """The pipeline config, shaped as PaddleX's ``multilingual_speech_recognition.yaml``."""
    return {
        "pipeline_name": PIPELINE_NAME,
        "SubModules": {"MultilingualSpeechRecognition": {
            "module_name": PIPELINE_NAME, "model_name": f"whisper_{model}", "model_dir": None, "batch_size": 1,
        }},
    }


def _scalar_text(value) -> str:
    return "null" if value is None else str(value)


def config_text(config: dict, indent: int = 0) -> str:
    """Render a nested dict of scalars as YAML."""
    lines = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(config_text(value, indent + 2).rstrip("\n"))
        else:
            lines.append(" " * indent + f"{key}: {_scalar_text(value)}")
    return "\n".join(lines) + "\n"


def _parse_scalar(text: str):
    text = text.strip()
    if text in ("null", "~", "", "None"):
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_config(text: str, where: str) -> dict:
    """Read the simple YAML of a pipeline config (nested mappings of scalars)."""
    root: dict = {}
    stack = [(-1, root)]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise ValueError(f"{where}: line {number} is not 'key: value': {raw.strip()!r}")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key.strip()] = _parse_scalar(value)
        else:
            parent[key.strip()] = child = {}
            stack.append((indent, child))
    return root


def load_config(path) -> dict:
    """Read a pipeline config file written by ``--get_pipeline_config`` (or PaddleX's own)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such pipeline config file")
    config = parse_config(path.read_text(encoding="utf-8"), str(path))
    if config.get("pipeline_name") != PIPELINE_NAME:
        raise ValueError(f"{path}: pipeline_name is {config.get('pipeline_name')!r}, expected {PIPELINE_NAME!r}")
    return config


def save_config(save_path, config: Optional[dict] = None) -> Path:
    """Write the pipeline config; a directory receives ``multilingual_speech_recognition.yaml``."""
    path = Path(save_path)
    if path.suffix not in (".yaml", ".yml"):
        path = path / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(config or default_config()), encoding="utf-8")
    return path


def model_from_config(config: dict) -> str:
    """The numwhisper model (name or path) a pipeline config names."""
    module = config.get("SubModules", {}).get("MultilingualSpeechRecognition", {})
    if module.get("model_dir"):
        return str(module["model_dir"])
    name = module.get("model_name") or f"whisper_{DEFAULT_MODEL}"
    if name not in PADDLEX_MODEL_NAMES:
        known = ", ".join(PADDLEX_MODEL_NAMES)
        raise ValueError(f"model_name {name!r} has no weights here (use one of {known}, or set model_dir)")
    return PADDLEX_MODEL_NAMES[name]


def transcribe_item(model: WhisperModel, item: WorkItem, options: DecodingOptions, progress=None,
                    limits: AudioLimits = AudioLimits()) -> dict:
    """Read one work item and transcribe it -> PaddleX's result dict; a bad input raises InputError.

    ``progress(done_frames, total_frames)`` is called after each 30 s window; ``limits`` are the
    admission rules for its audio.
    """
    if item.error is not None:
        raise item.error
    samples = open_samples(item.source, item.sample_rate, paddlex=options.paddlex, name=item.name, limits=limits)
    return transcribe_audio(model, samples, options, item.input_path, progress=progress)


class Pipeline:
    """A loaded model behind PaddleX's ``predict(input=...)`` interface."""

    def __init__(self, model: str = DEFAULT_MODEL, options: DecodingOptions = DecodingOptions(),
                 device: Union[str, Device, None] = None, limits: AudioLimits = AudioLimits()):
        self.model = load_model(model, device=device)
        self.options = options
        self.limits = limits

    def predict(self, input, **options) -> Iterator[Result]:
        """Yield one ``Result`` per input (a path, directory, URL, bytes, base64 text or array)."""
        run_options = dataclasses.replace(self.options, **options) if options else self.options
        for item in expand_inputs(input if isinstance(input, list) else [input]):
            yield Result(transcribe_item(self.model, item, run_options, limits=self.limits))


def create_pipeline(pipeline: str = PIPELINE_NAME, device: Optional[str] = None, **options) -> Pipeline:
    """PaddleX's entry point: a pipeline name or a path to a pipeline config YAML.

    device: PaddleX's spelling ("cpu", "gpu:0", ...; None: gpu:0 when Paddle sees a GPU, else cpu),
    or "paddle:cpu" for the Paddle backend on the CPU (see ``devices``). ``options``: DecodingOptions
    fields (``word_timestamps=True`` adds words); with compat="openai" the rest take openai-whisper's
    defaults (``decoding.openai_defaults``).
    """
    device = resolve_device(device)  # fails before the config is read; None is decided once, here
    if pipeline == PIPELINE_NAME:
        config = default_config()
    else:
        config = load_config(pipeline)
    return Pipeline(model_from_config(config), options_for_mode(**options), device)
