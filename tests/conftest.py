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
