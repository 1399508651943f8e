"""Shared fixtures: the repository root and the real model files (converted once per machine)."""

import os
from pathlib import Path

import pytest

from numwhisper.formats import hub

REPO = Path(__file__).resolve().parent.parent
MODEL_NAMES = ("base", "tiny.en")


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root (tests run commands from here)."""
    return REPO


@pytest.fixture(scope="session")
def model_files() -> dict:
    """{name: path} of the canonical safetensors files of the packaged models."""
    return {name: hub.resolve(name) for name in MODEL_NAMES}


# The backends every golden parity test runs on: id -> device (see numwhisper.devices).
BACKEND_DEVICES = {"numpy": "cpu", "paddle-cpu": "paddle:cpu"}


@pytest.fixture(scope="session")
def backend_for(model_files):
    """A function (backend id, model name) -> Backend, each built once per session."""
    from numwhisper.backend import load_backend
    from numwhisper.devices import resolve_device
    from numwhisper.formats.checkpoint import load

    built = {}

    def get(backend_id: str, model_name: str):
        key = (backend_id, model_name)
        if key not in built:
            built[key] = load_backend(load(model_files[model_name]), resolve_device(BACKEND_DEVICES[backend_id]))
        return built[key]

    return get


@pytest.fixture(scope="session")
def encoder_memo() -> dict:
    """Encoder outputs by (backend, window), shared by every parity test (``golden_check.memo_encode``)."""
    return {}


@pytest.fixture(scope="session")
def model_for(backend_for, model_files):
    """A function (backend id, model name) -> WhisperModel over the session's backend of that pair."""
    from numwhisper.formats.checkpoint import load
    from numwhisper.transcription import WhisperModel

    built = {}

    def get(backend_id: str, model_name: str):
        key = (backend_id, model_name)
        if key not in built:
            metadata = load(model_files[model_name]).metadata
            built[key] = WhisperModel.with_backend(backend_for(backend_id, model_name), metadata)
        return built[key]

    return get


# The models the tests use, each loaded once for the whole session. A test that is about loading
# itself (another device, a subprocess, a load that must fail) loads its own.


@pytest.fixture(scope="session")
def loaded(model_for):
    """A function model name -> the session's WhisperModel of that name on the NumPy backend (what
    ``numwhisper.load_model(name)`` gives on this machine), shared with the parity tests."""
    return lambda name: model_for("numpy", name)


@pytest.fixture(scope="session")
def base(loaded):
    """The multilingual base model (the session's one)."""
    return loaded("base")


@pytest.fixture(scope="session")
def tiny_en(loaded):
    """The English-only tiny.en model (the session's one)."""
    return loaded("tiny.en")


# The audio tests' inputs (test_inputs.py reads them as they are, test_audio.py as 16 kHz mono).


@pytest.fixture(scope="session")
def jfk():
    """The 16 kHz mono golden clip as float32 [N]."""
    import soundfile

    samples, rate = soundfile.read(REPO / "golden" / "audio" / "en_jfk.wav", dtype="float32")
    assert rate == 16000 and samples.ndim == 1
    return samples


@pytest.fixture(scope="session")
def variants(jfk, tmp_path_factory):
    """The clip written in other containers, codecs, rates and channel counts: {name: path}."""
    import numpy as np
    import scipy.signal
    import soundfile

    root = tmp_path_factory.mktemp("variants")
    x48 = scipy.signal.resample(jfk, len(jfk) * 3).astype(np.float32)  # [3N] (FFT method, not polyphase)
    x8 = scipy.signal.resample(jfk, len(jfk) // 2).astype(np.float32)  # [N/2]
    x22 = scipy.signal.resample(jfk, len(jfk) * 441 // 320).astype(np.float32)  # [N * 22050/16000]
    specs = {
        "int16.wav": (jfk, 16000, "WAV", "PCM_16"),
        "float.wav": (jfk, 16000, "WAV", "FLOAT"),
        "flac.flac": (jfk, 16000, "FLAC", "PCM_16"),
        "vorbis.ogg": (jfk, 16000, "OGG", "VORBIS"),
        "opus.opus": (jfk, 16000, "OGG", "OPUS"),
        "mp3.mp3": (jfk, 16000, "MP3", "MPEG_LAYER_III"),
        "stereo48k.wav": (np.stack([x48, 0.5 * x48], axis=1), 48000, "WAV", "FLOAT"),  # [3N, 2]
        "pcm8k.wav": (x8, 8000, "WAV", "PCM_16"),
        "rate22050.flac": (x22, 22050, "FLAC", "PCM_24"),
    }
    paths = {}
    for name, (data, rate, fmt, subtype) in specs.items():
        paths[name] = root / name
        soundfile.write(paths[name], data, rate, format=fmt, subtype=subtype)
    return paths


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory):
    """Files that are not usable audio: {kind: path}."""
    import numpy as np
    import soundfile

    root = tmp_path_factory.mktemp("bad")
    files = {"empty": root / "empty.wav", "text": root / "notes.wav", "no frames": root / "silence0.wav",
             "nan": root / "nan.wav", "directory": root / "folder"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not audio\n" * 20)
    soundfile.write(files["no frames"], np.zeros(0, dtype=np.float32), 16000)
    soundfile.write(files["nan"], np.full(1600, np.nan, dtype=np.float32), 16000, subtype="FLOAT")  # [1600]
    files["directory"].mkdir()
    files["loop"] = root / "loop.wav"
    files["loop"].symlink_to(root / "loop.wav")
    files["dangling"] = root / "dangling.wav"
    files["dangling"].symlink_to(root / "gone.wav")
    files["fifo"] = root / "pipe.wav"
    os.mkfifo(files["fifo"])
    files["newline"] = root / "two\nlines.wav"  # never created: its name must stay on one line
    return files
