"""The public API, the names at the top of the package: each name of ``numwhisper.__all__`` is the
object of the module that defines it, imported on first use, so that ``import numwhisper`` loads
neither Numba nor the kernels and changes no environment variable; unknown names fail as they should;
and the public names used as a user would: load a model, transcribe, detect a language, every input
kind of ``WhisperModel.transcribe``, and ``create_pipeline`` against PaddleX's golden result.
"""

import base64
import importlib
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.signal
import soundfile

import numwhisper
from numwhisper.decoding import openai_defaults
from numwhisper.golden import files as golden
from numwhisper.golden import openai_files as openai_golden
from samples import JFK, JFK_WORDS, words
from server_support import serving

PUBLIC = ("load_model", "transcribe", "WhisperModel", "DecodingOptions", "Result", "create_pipeline")
# what loading a model brings in and does, and a bare ``import numwhisper`` must not
HEAVY_MODULES = ("numba", "numwhisper.kernels", "numwhisper.transcription")
TUNED_VARIABLES = ("GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OPENBLAS_THREAD_TIMEOUT")

CLIP = "golden/audio/en_ls_1272-128104-0000.wav"


def fresh_python(code: str, repo) -> dict:
    """Run ``code`` in a new interpreter without the tuned variables; return the JSON it prints last."""
    env = {name: value for name, value in os.environ.items() if name not in TUNED_VARIABLES}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ the names


def test_all_lists_the_public_names_and_each_is_its_modules_object():
    assert set(numwhisper.__all__) == {*PUBLIC, "__version__"}
    assert isinstance(numwhisper.__version__, str) and numwhisper.__version__
    for name in PUBLIC:
        value = getattr(numwhisper, name)
        module = importlib.import_module(value.__module__)  # where it is defined
        assert module.__name__.startswith("numwhisper.") and getattr(module, name) is value, name
    assert set(numwhisper.__all__) <= set(dir(numwhisper))


def test_import_numwhisper_loads_no_kernels_and_sets_no_environment(repo):
    code = ("import json, os, sys; import numwhisper; "
            f"print(json.dumps({{'modules': [m for m in {HEAVY_MODULES!r} if m in sys.modules], "
            f"'variables': [v for v in {TUNED_VARIABLES!r} if v in os.environ]}}))")
    assert fresh_python(code, repo) == {"modules": [], "variables": []}


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'numwhisper' has no attribute 'load_modle'"):
        numwhisper.load_modle
    assert not hasattr(numwhisper, "Model")  # the old name of WhisperModel
    with pytest.raises(ImportError):
        exec("from numwhisper import no_such_name", {})


def test_numwhisper_transcribe_is_the_function_whatever_was_imported_first(repo):
    for first in ("import numwhisper.transcription; import numwhisper; t = numwhisper.transcribe",
                  "import numwhisper; t = numwhisper.transcribe; import numwhisper.transcription"):
        code = (f"import json, types; {first}; "
                "print(json.dumps([isinstance(t, types.FunctionType), t is numwhisper.transcription.transcribe, "
                "numwhisper.transcribe is t]))")
        assert fresh_python(code, repo) == [True, True, True], first
    transcription = importlib.import_module("numwhisper.transcription")  # and in this process
    assert isinstance(numwhisper.transcribe, types.FunctionType) and numwhisper.transcribe is transcription.transcribe


# ------------------------------------------------------------------------------ used as a user would


def test_load_model_and_transcribe_through_the_public_names(repo, loaded):
    model = loaded("tiny.en")  # numwhisper.load_model("tiny.en"), once per session
    assert isinstance(model, numwhisper.WhisperModel)
    out = numwhisper.transcribe(model, str(repo / JFK), numwhisper.DecodingOptions(beam_size=None))
    assert "ask not what your country can do for you" in out["result"]["text"]
    assert out["input_path"] == str(repo / JFK) and out["result"]["language"] == "en"
    result = numwhisper.Result(out)
    assert result.text == out["result"]["text"] and result.stem() == "en_jfk"


def test_model_object_api(repo, base):
    language, probs = base.detect_language(str(repo / "golden/audio/de_picovoice_test_de.wav"))
    assert language == "de" and abs(sum(probs.values()) - 1) < 1e-3 and max(probs, key=probs.get) == "de"
    out = base.transcribe(str(repo / CLIP), beam_size=None, language="en")
    assert "apostle" in out["result"]["text"] and out["input_path"] == str(repo / CLIP)


def test_create_pipeline_gives_the_golden_zh_result(repo):
    """The facade with PaddleX's defaults reproduces PaddleX's golden result for the Mandarin clip."""
    [result] = list(numwhisper.create_pipeline().predict(input=str(repo / "golden/audio/zh_paddlespeech_zh.wav")))
    expected = golden.load_result("base", "zh_paddlespeech_zh", "beam5")["result"]
    assert not golden.result_differences(result["result"], expected), golden.result_differences(result["result"], expected)
    assert result.json == {"res": dict(result)}


def test_create_pipeline_gives_words_and_openai_whispers_result(repo):
    """The facade passes word_timestamps through, and compat="openai" takes openai-whisper's defaults."""
    clip = str(repo / "golden/audio/zh_paddlespeech_zh.wav")
    [worded] = list(numwhisper.create_pipeline(word_timestamps=True).predict(input=clip))
    expected = golden.load_result("base", "zh_paddlespeech_zh", "beam5")["result"]
    body = {**worded["result"], "segments": [{k: v for k, v in s.items() if k != "words"} for s in worded["result"]["segments"]]}
    assert not golden.result_differences(body, expected), golden.result_differences(body, expected)
    reference = openai_golden.load_paddlex_words("base", "beam5", "zh_paddlespeech_zh")["segments"]
    for ours, ref in zip(worded["result"]["segments"], reference, strict=True):
        assert not openai_golden.compare_words(ours["words"], ref["words"], f"segment {ref['id']}").problems
    [openai] = list(numwhisper.create_pipeline(compat="openai", word_timestamps=True).predict(input=clip))
    case = openai_golden.OpenAICase("base", "cli", "zh_paddlespeech_zh")
    problems, _ = openai_golden.result_differences(openai["result"], openai_golden.load_result(case))
    assert not problems, problems


def test_model_transcribe_with_compat_openai_takes_openai_whispers_defaults(repo, tiny_en):
    """As create_pipeline, the command line and the server: options not given take the mode's defaults,
    so with compat="openai" a window that misses the log-probability threshold is decoded again at
    0.2, 0.4, ... 1.0 (PaddleX's defaults have no fallback)."""
    clip = str(repo / JFK)
    unreachable = dict(compat="openai", beam_size=None, best_of=2, logprob_threshold=-0.01)
    result = tiny_en.transcribe(clip, **unreachable)["result"]
    assert {segment["temperature"] for segment in result["segments"]} == {1.0}
    expected = numwhisper.transcribe(tiny_en, clip, openai_defaults(**unreachable))["result"]
    assert result == expected


# ------------------------------------------------------------------- every input kind of transcribe


def test_transcribe_scales_integer_pcm(repo, tiny_en):
    """An int16 array reaches the model as the same float signal its wav file gives."""
    pcm, rate = soundfile.read(str(repo / CLIP), dtype="int16")
    from_pcm = tiny_en.transcribe(pcm, sample_rate=rate, beam_size=None)
    from_file = tiny_en.transcribe(str(repo / CLIP), beam_size=None)
    assert from_pcm["result"] == from_file["result"] and from_pcm["input_path"] is None
    assert np.issubdtype(pcm.dtype, np.integer)


def test_transcribe_takes_bytes_base64_arrays_and_urls(repo, tiny_en):
    data = (repo / JFK).read_bytes()
    samples, rate = soundfile.read(repo / JFK, dtype="float32")  # [N]
    stereo48 = np.stack([scipy.signal.resample_poly(samples, 3, 1)] * 2, axis=1)  # [3N, 2]
    reference = tiny_en.transcribe(str(repo / JFK), beam_size=None)["result"]
    with serving(repo / "golden/audio") as url:
        same = {"bytes": data, "base64": base64.b64encode(data).decode(), "url": f"{url}/en_jfk.wav",
                "float array": samples}
        for kind, source in same.items():
            out = tiny_en.transcribe(source, beam_size=None)
            assert not golden.result_differences(out["result"], reference), kind
    out = tiny_en.transcribe(stereo48, sample_rate=48000, beam_size=None)
    assert words(out["result"]["text"]).startswith(JFK_WORDS) and out["input_path"] is None
