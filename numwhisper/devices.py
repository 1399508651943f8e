"""Devices, spelled as PaddleX spells them, and the backend each one runs on.

    cpu                        the NumPy + Numba backend
    gpu:N npu:N xpu:N mlu:N dcu:N   the Paddle backend on that device (``gpu`` alone means ``gpu:0``)
    paddle:cpu                 the Paddle backend on the CPU (Paddle's kernels; used by the parity tests)
    None                       gpu:0 when Paddle sees a CUDA GPU, else cpu (PaddleX's default)

A device that cannot run gives a ValueError that says what to install; there is no silent fallback.
Paddle is imported only when a Paddle device is asked for, or when ``None`` must find out whether
a CUDA build of Paddle sees a GPU (a build without CUDA or ROCm is recognised from its version file
without importing it).
"""

from __future__ import annotations

import ast
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

CPU = "cpu"
PADDLE_CPU = "paddle:cpu"
ACCELERATORS = ("gpu", "npu", "xpu", "mlu", "dcu")
CUSTOM_DEVICES = ("npu", "mlu")  # Paddle runs these through its custom-device plug-ins
NUMPY, PADDLE = "numpy", "paddle"
INSTALL_PADDLE = "pip install 'numwhisper[paddle]'"
GPU_BUILD_HINT = {
    "gpu": "a CUDA build of paddlepaddle (paddlepaddle-gpu)",
    "dcu": "a ROCm (DCU) build of paddlepaddle",
    "xpu": "an XPU build of paddlepaddle",
    "npu": "paddlepaddle with the paddle-custom-npu plug-in",
    "mlu": "paddlepaddle with the paddle-custom-mlu plug-in",
}


@dataclass(frozen=True)
class Device:
    """A resolved device: which backend runs the model and, for Paddle, on which place."""

    kind: str  # "cpu" or one of ACCELERATORS
    index: Optional[int]  # None for the CPU
    backend: str  # NUMPY or PADDLE

    @property
    def name(self) -> str:
        """The spelling to show and to pass again: "cpu", "paddle:cpu", "gpu:0", ..."""
        if self.kind == CPU:
            return CPU if self.backend == NUMPY else PADDLE_CPU
        return f"{self.kind}:{self.index}"

    @property
    def paddle_device(self) -> str:
        """The device string ``paddle.device`` understands ("cpu", "gpu:0", "npu:0", ...)."""
        return CPU if self.kind == CPU else f"{self.kind}:{self.index}"


def _usage() -> str:
    return f"use {CPU}, {PADDLE_CPU}, or one of {', '.join(a + ':N' for a in ACCELERATORS)}"


def parse_device(device: Optional[str]) -> Optional[Device]:
    """The device a string names (no availability check); None stays None. ValueError when malformed."""
    if device is None:
        return None
    text = str(device).strip().lower()
    if text == CPU:
        return Device(CPU, None, NUMPY)
    if text == PADDLE_CPU:
        return Device(CPU, None, PADDLE)
    kind, _, ids = text.partition(":")
    if kind == CPU:
        raise ValueError(f"device {device!r}: the CPU takes no device id ({_usage()})")
    if kind not in ACCELERATORS:
        raise ValueError(f"unknown device {device!r}: {_usage()}")
    if "," in ids:
        raise ValueError(f"device {device!r} names several devices; numwhisper runs a model on one ({kind}:N)")
    if ids and not ids.isdigit():
        raise ValueError(f"device {device!r}: the device id must be a whole number ({kind}:0, {kind}:1, ...)")
    return Device(kind, int(ids) if ids else 0, PADDLE)


def paddle_installed() -> bool:
    """True when the ``paddle`` module can be imported (not importing it)."""
    try:
        return importlib.util.find_spec("paddle") is not None
    except (ImportError, ValueError):  # a blocked or broken paddle entry in sys.modules
        return False


def _paddle_build_lacks_gpu() -> bool:
    """True when the installed Paddle's generated version file says it has neither CUDA nor ROCm.

    Read as text (never executed), so deciding the default device costs no Paddle import on a CPU
    build; any doubt (no file, another layout) answers False and Paddle itself is asked.
    """
    try:
        spec = importlib.util.find_spec("paddle")
        version_file = Path(next(iter(spec.submodule_search_locations))) / "version" / "__init__.py"
        fields = {}
        for node in ast.parse(version_file.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        fields[target.id] = node.value.value
    except (OSError, SyntaxError, StopIteration, TypeError, ValueError, ImportError):
        return False
    if "cuda_version" not in fields or "hip_version" not in fields:
        return False
    return fields["cuda_version"] in ("False", None) and fields["hip_version"] in ("False", None)


def import_paddle(device: str):
    """Import Paddle for ``device``, or fail saying what to install."""
    if not paddle_installed():
        kind = device.split(":", 1)[0]
        extra = f" (and {GPU_BUILD_HINT[kind]} for {kind})" if kind in GPU_BUILD_HINT else ""
        raise ValueError(f"device {device!r} runs on Paddle, which is not installed: {INSTALL_PADDLE}{extra}")
    try:
        with warnings.catch_warnings():  # Paddle warns on import that ccache (for its C++ extensions) is missing
            warnings.filterwarnings("ignore", message="No ccache found")
            import paddle
    except ImportError as err:
        raise ValueError(f"device {device!r} runs on Paddle, which failed to import ({err}); "
                         f"reinstall it: {INSTALL_PADDLE}") from None
    return paddle


def _available(paddle, kind: str) -> tuple:
    """(compiled in, number of devices Paddle sees, the check that says so) for an accelerator kind."""
    dev = paddle.device
    if kind == "gpu":
        compiled = dev.is_compiled_with_cuda()
        return compiled, dev.cuda.device_count() if compiled else 0, "paddle.device.is_compiled_with_cuda()"
    if kind == "dcu":
        compiled = dev.is_compiled_with_rocm()
        return compiled, dev.cuda.device_count() if compiled else 0, "paddle.device.is_compiled_with_rocm()"
    if kind == "xpu":
        compiled = dev.is_compiled_with_xpu()
        return compiled, dev.xpu.device_count() if compiled else 0, "paddle.device.is_compiled_with_xpu()"
    compiled = dev.is_compiled_with_custom_device(kind)
    count = sum(1 for d in dev.get_available_custom_device() if d.split(":", 1)[0] == kind) if compiled else 0
    return compiled, count, f"paddle.device.is_compiled_with_custom_device({kind!r})"


def check_paddle_device(device: Device) -> None:
    """Raise ValueError unless the installed Paddle can run on ``device``."""
    paddle = import_paddle(device.name)
    if device.kind == CPU:
        return
    compiled, count, check = _available(paddle, device.kind)
    if not compiled:
        raise ValueError(f"device {device.name!r} needs the Paddle backend on {GPU_BUILD_HINT[device.kind]}, but the "
                         f"installed paddlepaddle {paddle.__version__} is not built for it ({check} is False); "
                         f"install that build, or use --device cpu")
    if device.index >= count:
        raise ValueError(f"device {device.name!r}: Paddle sees {count} {device.kind} device(s) "
                         f"(ids 0..{count - 1}); pick one of those, or use --device cpu")


def default_device() -> Device:
    """PaddleX's default: gpu:0 when Paddle is installed, built with CUDA and sees a GPU; else cpu."""
    if not paddle_installed() or _paddle_build_lacks_gpu():
        return Device(CPU, None, NUMPY)
    paddle = import_paddle("gpu:0")

    if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        return Device("gpu", 0, PADDLE)
    return Device(CPU, None, NUMPY)


def resolve_device(device: Optional[str]) -> Device:
    """The device to run on, checked: ValueError naming what to install when it cannot run here."""
    parsed = parse_device(device)
    if parsed is None:
        return default_device()
    if parsed.backend == PADDLE:
        check_paddle_device(parsed)
    return parsed

