"""The PaddleX-shaped result object, numwhisper.result.Result: a dict with PaddleX's fields, its
``json`` and ``str`` attributes, ``print``, ``save_to_json`` (byte for byte as PaddleX writes its own
files) and the file stem; and ``transcript_of``, which the writers and the server read results with.
"""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from numwhisper.result import Result, transcript_of
from samples import segment


SEGMENTS = [
    segment(0, 0, 0.0, 2.7600000000000002, " And so, my fellow Americans,"),
    segment(1, 0, 2.7600000000000002, 5.5, " an arrow --> inside,\tand a tab "),
    segment(2, 3000, 59.9996, 61.0004, " 中文测试，ça marche"),
]
RESULT = {"input_path": "/data/clips/en_jfk.wav",
          "result": {"text": "".join(s["text"] for s in SEGMENTS), "segments": SEGMENTS, "language": "en"}}


def test_result_is_a_dict_with_paddlex_fields():
    res = Result(RESULT)
    assert isinstance(res, dict) and res == RESULT
    assert res["result"]["segments"][0]["end"] == 2.7600000000000002
    assert res.text == RESULT["result"]["text"] and res.language == "en" and res.segments == SEGMENTS
    assert json.loads(json.dumps(res)) == RESULT


def test_json_attribute_wraps_a_plain_copy_in_res():
    res = Result({"input_path": Path("/x/a.wav"),
                  "result": {"text": "t", "language": "en",
                             "segments": [{"start": np.float32(1.5), "id": np.int64(3),
                                           "tokens": np.array([1, 2], dtype=np.int32), "pair": (1, 2)}]}})
    payload = res.json
    assert list(payload) == ["res"] and type(payload["res"]) is dict
    assert payload["res"] == {"input_path": "/x/a.wav", "result": {"text": "t", "language": "en", "segments": [
        {"start": 1.5, "id": 3, "tokens": [1, 2], "pair": [1, 2]}]}}
    assert type(payload["res"]["result"]["segments"][0]["id"]) is int
    payload["res"]["result"]["text"] = "changed"
    assert res["result"]["text"] == "t"  # a copy, not a view


def test_str_attribute_wraps_the_result_itself_in_res():
    res = Result(RESULT)
    assert list(res.str) == ["res"] and res.str["res"] is res  # PaddleX's .str: the object, not a copy


def test_print_shows_res_as_json_or_as_a_dict(capsys):
    res = Result(RESULT)
    res.print(json_format=True, indent=4, ensure_ascii=False)
    out = capsys.readouterr().out
    assert out == json.dumps({"res": RESULT}, indent=4, ensure_ascii=False) + "\n"
    assert json.loads(out) == {"res": RESULT} and "中文测试" in out
    res.print(json_format=True, indent=2, ensure_ascii=True)
    out = capsys.readouterr().out
    assert "\\u4e2d" in out and json.loads(out) == {"res": RESULT} and '\n  "res"' in out
    res.print()
    assert ast.literal_eval(capsys.readouterr().out) == {"res": RESULT}


def test_save_to_json_writes_stem_res_json_into_a_directory(tmp_path):
    res = Result(RESULT)
    path = res.save_to_json(tmp_path / "out", indent=4, ensure_ascii=False)
    assert path == tmp_path / "out" / "en_jfk_res.json"
    # the dict itself (no "res" wrapper), no final newline
    assert path.read_bytes() == json.dumps(RESULT, indent=4, ensure_ascii=False).encode("utf-8")
    assert res.save_to_json(tmp_path / "out.txt") == tmp_path / "out.txt" / "en_jfk_res.json"
    res.save_all(tmp_path / "all")
    assert (tmp_path / "all" / "en_jfk_res.json").read_bytes() == path.read_bytes()


def test_save_to_json_writes_a_json_path_as_given(tmp_path):
    res = Result(RESULT)
    target = tmp_path / "deep" / "er" / "mine.json"
    assert res.save_to_json(target, indent=2, ensure_ascii=True) == target
    assert target.read_text(encoding="ascii") == json.dumps(RESULT, indent=2, ensure_ascii=True)
    assert res.save_to_json(tmp_path / "UPPER.JSON") == tmp_path / "UPPER.JSON"


def test_file_stems_for_lists_urls_and_missing_input_paths(tmp_path):
    assert Result(RESULT, input_path=["/a/first.flac", "/b/second.wav"]).stem() == "first"
    assert Result(RESULT, input_path="rel/name.with.dots.mp3").stem() == "name.with.dots"
    anonymous = Result(RESULT, input_path=None)
    first = anonymous.save_to_json(tmp_path)
    assert re.fullmatch(r"\d+_\d{4}_res\.json", first.name)
    assert anonymous.save_to_json(tmp_path) == first  # drawn once per result
    assert Result({"result": RESULT["result"]}).stem() != ""


def test_transcript_of_gives_the_inner_dict_of_either_shape():
    inner = RESULT["result"]
    assert transcript_of(RESULT) is inner  # the PaddleX-shaped outer dict
    assert transcript_of(Result(RESULT)) is inner
    assert transcript_of(inner) is inner  # the inner {"text", "segments", "language"} itself


# ------------------------------------------------------------------------------ PaddleX's own files

# that there are some is checked in test_writers.py
GOLDEN_RESULTS = sorted((Path(__file__).resolve().parent.parent / "golden" / "results").glob("*/*/*.json"))


@pytest.mark.parametrize("golden", GOLDEN_RESULTS, ids=lambda p: "/".join(p.parts[-3:]))
def test_save_to_json_rewrites_paddlex_files_byte_for_byte(golden, tmp_path):
    data = json.loads(golden.read_text(encoding="utf-8"))
    saved = Result(data).save_to_json(tmp_path / "again.json")
    assert saved.read_bytes() == golden.read_bytes()
