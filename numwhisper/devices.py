"""Device names as PaddleX spells them: ``cpu``, ``gpu:0``, ``npu:0``, ``xpu:0``, ``mlu:0``, ``dcu:0``."""

from __future__ import annotations

from typing import Optional

CPU = "cpu"
ACCELERATORS = ("gpu", "npu", "xpu", "mlu", "dcu")


def check_device(device: Optional[str]) -> str:
    """The device to run on; only the NumPy/Numba CPU backend exists so far."""
    if device is None or device == CPU:
        return CPU
    kind = str(device).split(":", 1)[0]
    if kind in ACCELERATORS:
        raise ValueError(f"device {device!r} needs the Paddle backend, which this numwhisper does not have yet; "
                         f"use --device cpu")
    raise ValueError(f"unknown device {device!r}: use cpu, or one of {', '.join(a + ':N' for a in ACCELERATORS)}")
