"""Device selection with PaddleX's semantics, run against the real Paddle installed here (a CPU build:
no CUDA, ROCm, XPU or custom devices), and against a Python in which ``import paddle`` fails.

No GPU build of Paddle is available to these tests: the accelerator paths are tested up to the point
where Paddle says it lacks the device.
"""

import subprocess
import sys

import pytest

import numwhisper
from numwhisper import devices
from numwhisper.devices import Device, parse_device, resolve_device


@pytest.mark.parametrize("text, expected", [
    ("cpu", Device("cpu", None, "numpy")),
    ("CPU", Device("cpu", None, "numpy")),
    ("paddle:cpu", Device("cpu", None, "paddle")),
    ("gpu", Device("gpu", 0, "paddle")),
    ("gpu:1", Device("gpu", 1, "paddle")),
    ("npu:0", Device("npu", 0, "paddle")),
    ("xpu:2", Device("xpu", 2, "paddle")),
    ("mlu:0", Device("mlu", 0, "paddle")),
    ("dcu:3", Device("dcu", 3, "paddle")),
])
def test_device_names_parse_as_paddlex_spells_them(text, expected):
    assert parse_device(text) == expected
    assert parse_device(expected.name) == expected  # the name spells the device again


@pytest.mark.parametrize("text, message", [
    ("tpu:0", "unknown device 'tpu:0'"),
    ("cpu:0", "the CPU takes no device id"),
    ("gpu:0,1", "names several devices"),
    ("gpu:x", "device id must be a whole number"),
    ("paddle:gpu:0", "unknown device"),
])
def test_malformed_devices_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(text)


@pytest.mark.parametrize("device, check", [
    ("gpu:0", "paddle.device.is_compiled_with_cuda()"),
    ("gpu", "paddle.device.is_compiled_with_cuda()"),
    ("dcu:0", "paddle.device.is_compiled_with_rocm()"),
    ("xpu:0", "paddle.device.is_compiled_with_xpu()"),
    ("npu:0", "paddle.device.is_compiled_with_custom_device('npu')"),
    ("mlu:1", "paddle.device.is_compiled_with_custom_device('mlu')"),
])
def test_an_accelerator_this_paddle_lacks_is_a_clear_error(device, check):
    with pytest.raises(ValueError) as err:
        resolve_device(device)
    text = str(err.value)
    assert check in text and "is False" in text and "Paddle backend" in text and "--device cpu" in text
    assert "paddlepaddle 3.3.1" in text  # names the Paddle that is installed


def test_paddle_on_the_cpu_and_the_default():
    assert resolve_device("paddle:cpu") == Device("cpu", None, "paddle")
    assert resolve_device("cpu").name == "cpu"
    assert resolve_device(None) == Device("cpu", None, "numpy")  # this Paddle sees no GPU: PaddleX picks the CPU
    assert devices.resolve_device(None).name == "cpu"


def test_a_cpu_build_of_paddle_is_recognised_without_importing_it():
    code = ("import sys; from numwhisper import devices; "
            "print(devices._paddle_build_lacks_gpu(), devices.resolve_device(None).name, 'paddle' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "cpu", "False"]


BLOCK_PADDLE = "import sys; sys.modules['paddle'] = None; "  # `import paddle` now fails, as if not installed


@pytest.mark.parametrize("device, extra", [
    ("gpu:0", "and a CUDA build of paddlepaddle (paddlepaddle-gpu) for gpu"),
    ("npu:0", "paddle-custom-npu"),
    ("paddle:cpu", ""),
])
def test_without_paddle_a_paddle_device_says_what_to_install(device, extra):
    code = BLOCK_PADDLE + f"import numwhisper; numwhisper.load_model('tiny.en', device={device!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: ") and "runs on Paddle, which is not installed" in last, done.stderr
    assert "pip install 'numwhisper[paddle]'" in last and extra in last


def test_without_paddle_the_default_and_cpu_run_numpy():
    code = BLOCK_PADDLE + ("from numwhisper import devices; import numwhisper; "
                           "m = numwhisper.load_model('tiny.en'); "
                           "print(devices.resolve_device(None).name, m.backend.name)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cpu", "numpy"]


def test_load_model_and_pipeline_take_the_device():
    model = numwhisper.load_model("tiny.en", device="paddle:cpu")
    assert model.backend.name == "paddle:cpu" and model.backend.device == Device("cpu", None, "paddle")
    with pytest.raises(AttributeError, match="holds no NumPy weights"):
        model.weights
    assert numwhisper.load_model("tiny.en", device="cpu").backend.name == "numpy"
    resolved = Device("cpu", None, "paddle")  # a Device already resolved is taken as it is
    assert numwhisper.load_model("tiny.en", device=resolved).backend.device is resolved
    with pytest.raises(ValueError, match="is_compiled_with_cuda"):
        numwhisper.load_model("tiny.en", device="gpu:0")
    pipeline = numwhisper.create_pipeline(device="paddle:cpu")
    assert pipeline.model.backend.name == "paddle:cpu"
    with pytest.raises(ValueError, match="is_compiled_with_xpu"):
        numwhisper.create_pipeline(device="xpu:0")
