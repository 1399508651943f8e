"""Shared fixtures: the repository root and the real model files (converted once per machine)."""

from pathlib import Path

import pytest

from numwhisper import hub

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
    from numwhisper.checkpoint import load

    built = {}

    def get(backend_id: str, model_name: str):
        key = (backend_id, model_name)
        if key not in built:
            built[key] = load_backend(load(model_files[model_name]), BACKEND_DEVICES[backend_id])
        return built[key]

    return get


@pytest.fixture(scope="session")
def encoder_memo() -> dict:
    """Encoder outputs by (backend, window), shared by every parity test (``golden_check.memo_encode``)."""
    return {}


@pytest.fixture(scope="session")
def model_for(backend_for, model_files):
    """A function (backend id, model name) -> transcribe.Model over the session's backend of that pair."""
    from numwhisper.checkpoint import load
    from numwhisper.transcribe import Model

    built = {}

    def get(backend_id: str, model_name: str):
        key = (backend_id, model_name)
        if key not in built:
            built[key] = Model.with_backend(backend_for(backend_id, model_name), load(model_files[model_name]).metadata)
        return built[key]

    return get
