"""Transcript writers (txt, srt, vtt, tsv, json) parsed back, the files write_result names, and the
writers on PaddleX's own result files. The result object itself is tested in test_result.py."""

import json
import re
from pathlib import Path

import pytest

from numwhisper import writers
from numwhisper.result import Result
from numwhisper.writers import format_timestamp, write_result
from samples import segment

MS = 0.001  # a written time must parse back to the segment time within one millisecond


SEGMENTS = [
    segment(0, 0, 0.0, 2.7600000000000002, " And so, my fellow Americans,"),
    segment(1, 0, 2.7600000000000002, 5.5, " an arrow --> inside,\tand a tab "),
    segment(2, 0, 8.0, 30.76, " an end past the end of the audio"),  # PaddleX does this on short clips
    segment(3, 3000, 59.9996, 61.0004, " 中文测试，ça marche"),           # rounds up to a whole minute
    segment(4, 372000, 3725.5, 3727.125, "  over an hour  "),
    segment(5, 372000, 3727.125, 3728.0, ""),
]
RESULT = {"input_path": "/data/clips/en_jfk.wav",
          "result": {"text": "".join(s["text"] for s in SEGMENTS), "segments": SEGMENTS, "language": "en"}}


def seconds(h, m, s, ms):
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text):
    """[(counter, start, end, text)] from SubRip text (one line of text per cue)."""
    lines = text.split("\n")
    cues = []
    i = 0
    while i + 3 < len(lines):
        timing = re.fullmatch(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})", lines[i + 1])
        assert timing, lines[i + 1]
        assert lines[i + 3] == ""
        cues.append((int(lines[i]), seconds(*timing.groups()[:4]), seconds(*timing.groups()[4:]), lines[i + 2]))
        i += 4
    assert lines[i:] == [""], lines[i:]
    return cues


def parse_vtt(text):
    """[(start, end, text, start_has_hours)] from WebVTT text (one line of text per cue)."""
    assert text.startswith("WEBVTT\n\n")
    lines = text[len("WEBVTT\n\n"):].split("\n")
    stamp = r"(?:(\d\d):)?(\d\d):(\d\d)\.(\d{3})"
    cues = []
    i = 0
    while i + 2 < len(lines):
        timing = re.fullmatch(f"{stamp} --> {stamp}", lines[i])
        assert timing, lines[i]
        assert lines[i + 2] == ""
        groups = timing.groups()
        cues.append((seconds(*groups[:4]), seconds(*groups[4:]), lines[i + 1], groups[0] is not None))
        i += 3
    assert lines[i:] == [""], lines[i:]
    return cues


# ------------------------------------------------------------------------------------------ formats

def test_timestamps_follow_openai_whisper():
    assert format_timestamp(0.0) == "00:00.000"
    assert format_timestamp(2.7600000000000002) == "00:02.760"
    assert format_timestamp(59.9996) == "01:00.000"
    assert format_timestamp(3725.5) == "01:02:05.500"
    assert format_timestamp(8.0, always_include_hours=True, decimal_marker=",") == "00:00:08,000"
    with pytest.raises(ValueError):
        format_timestamp(-0.5)


def test_srt_cues_count_from_one_and_parse_back_to_the_segment_times():
    cues = parse_srt(writers.to_srt(RESULT))
    assert [c[0] for c in cues] == list(range(1, len(SEGMENTS) + 1))
    for (_, start, end, text), seg in zip(cues, SEGMENTS):
        assert abs(start - seg["start"]) <= MS and abs(end - seg["end"]) <= MS
        assert text == seg["text"].strip().replace("-->", "->")
    assert cues[1][3] == "an arrow -> inside,\tand a tab"
    assert cues[2][2] == 30.76  # past the end of the audio, written as it is


def test_vtt_has_its_header_optional_hours_and_the_segment_times():
    cues = parse_vtt(writers.to_vtt(RESULT))
    assert len(cues) == len(SEGMENTS)
    for (start, end, text, has_hours), seg in zip(cues, SEGMENTS):
        assert abs(start - seg["start"]) <= MS and abs(end - seg["end"]) <= MS
        assert text == seg["text"].strip().replace("-->", "->")
        assert has_hours == (seg["start"] >= 3600)
    assert "-->" not in "".join(c[2] for c in cues)


def test_tsv_has_three_columns_of_integer_milliseconds_and_text():
    rows = writers.to_tsv(RESULT).split("\n")
    assert rows[0] == "start\tend\ttext" and rows[-1] == ""
    body = [row.split("\t") for row in rows[1:-1]]
    assert len(body) == len(SEGMENTS)
    for (start, end, text), seg in zip(body, SEGMENTS):
        assert int(start) == round(1000 * seg["start"]) and int(end) == round(1000 * seg["end"])
        assert text == seg["text"].strip().replace("\t", " ")
    assert body[0][:2] == ["0", "2760"] and body[4][:2] == ["3725500", "3727125"]


def test_txt_is_one_stripped_segment_per_line():
    assert writers.to_txt(RESULT).split("\n") == [s["text"].strip() for s in SEGMENTS] + [""]


def test_json_round_trips_exactly():
    text = writers.to_json(RESULT)
    assert json.loads(text) == RESULT
    assert "中文测试" in text and "2.7600000000000002" in text


def test_write_result_names_files_after_the_input_stem(tmp_path):
    written = write_result(RESULT, tmp_path, "all")
    assert [p.name for p in written] == ["en_jfk.txt", "en_jfk.vtt", "en_jfk.srt", "en_jfk.tsv", "en_jfk.json"]
    for path in written:
        assert path.read_text(encoding="utf-8") == writers.WRITERS[path.suffix[1:]](RESULT)
    assert json.loads((tmp_path / "en_jfk.json").read_text(encoding="utf-8")) == RESULT
    assert [p.name for p in write_result(RESULT, tmp_path / "new", "srt, vtt")] == ["en_jfk.srt", "en_jfk.vtt"]
    assert [p.name for p in write_result(RESULT, tmp_path, ["tsv", "TSV", "txt"])] == ["en_jfk.tsv", "en_jfk.txt"]
    assert [p.name for p in write_result(RESULT, tmp_path, ["srt"], stem="custom")] == ["custom.srt"]
    with pytest.raises(ValueError, match="unknown output format 'docx'"):
        write_result(RESULT, tmp_path, ["txt", "docx"])


def test_write_result_uses_the_same_stem_as_save_to_json(tmp_path):
    url_result = Result(RESULT, input_path="https://example.com/audio/my%20clip.mp3?dl=1")
    assert [p.name for p in write_result(url_result, tmp_path, "txt")] == ["my clip.txt"]
    anonymous = Result(RESULT, input_path=None)
    [txt] = write_result(anonymous, tmp_path, "txt")
    saved = anonymous.save_to_json(tmp_path)
    assert re.fullmatch(r"\d+_\d{4}\.txt", txt.name)
    assert saved.name == txt.stem + "_res.json"


# ------------------------------------------------------------------------------ PaddleX's own files

GOLDEN_RESULTS = sorted((Path(__file__).resolve().parent.parent / "golden" / "results").glob("*/*/*.json"))


def test_golden_results_exist():
    assert GOLDEN_RESULTS, "no golden/results/<model>/<config>/<clip>.json files"


@pytest.mark.parametrize("golden", GOLDEN_RESULTS, ids=lambda p: "/".join(p.parts[-3:]))
def test_json_writer_rewrites_paddlex_files_byte_for_byte(golden):
    data = json.loads(golden.read_text(encoding="utf-8"))
    assert writers.to_json(data).encode("utf-8") == golden.read_bytes()


@pytest.mark.parametrize("golden", GOLDEN_RESULTS, ids=lambda p: "/".join(p.parts[-3:]))
def test_subtitles_of_paddlex_results_parse_back(golden):
    data = json.loads(golden.read_text(encoding="utf-8"))
    segments = data["result"]["segments"]
    srt, vtt = parse_srt(writers.to_srt(data)), parse_vtt(writers.to_vtt(data))
    assert len(srt) == len(vtt) == len(segments) > 0
    for (_, s_start, s_end, _), (v_start, v_end, _, _), seg in zip(srt, vtt, segments):
        assert max(abs(s_start - seg["start"]), abs(s_end - seg["end"])) <= MS
        assert max(abs(v_start - seg["start"]), abs(v_end - seg["end"])) <= MS
