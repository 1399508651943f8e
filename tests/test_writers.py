"""Transcript writers (txt, srt, vtt, tsv, json) parsed back, the files write_result names, the
writers on PaddleX's own result files, and the word layout options (highlight_words, max_line_width,
max_line_count, max_words_per_line) against openai-whisper's own writers' files. The result object
itself is tested in test_result.py."""

import functools
import json
import re
from pathlib import Path

import pytest

from numwhisper import writers
from numwhisper.cli import build_parser, main, writer_options
from numwhisper.errors import EXIT_ERROR
from numwhisper.result import Result
from numwhisper.writers import WriterOptions, format_timestamp, write_result
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


# -------------------------------------------------------------------- word layout: openai-whisper's files

OPENAI = Path(__file__).resolve().parent.parent / "golden" / "openai"
WRITER_FILES = sorted((OPENAI / "writers").glob("*/*/*.*"))


@functools.lru_cache(maxsize=None)
def option_sets() -> dict:
    """golden/openai/writers/option_sets.json: the source config of the results and every option set."""
    return json.loads((OPENAI / "writers" / "option_sets.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def openai_result(model: str, clip: str) -> dict:
    """An openai golden result (text, segments with words, language), the writers' files' source."""
    path = OPENAI / model / option_sets()["source_config"] / f"{clip}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def jfk_words() -> dict:
    return openai_result("base", "en_jfk")


def test_openai_writer_files_cover_every_result_and_option_set():
    sets = option_sets()["option_sets"]
    formats = option_sets()["formats"]
    for model in ("base", "tiny.en"):
        clips = sorted(p.stem for p in (OPENAI / model / option_sets()["source_config"]).glob("*.json"))
        assert clips, model
        for name in sets:
            expected = {f"{clip}.{fmt}" for clip in clips
                        for fmt in formats["every option set"] + (formats["none only"] if name == "none" else [])}
            assert {p.name for p in (OPENAI / "writers" / model / name).iterdir()} == expected, (model, name)


@pytest.mark.parametrize("golden", WRITER_FILES, ids=lambda p: "/".join(p.parts[-3:]))
def test_writers_equal_openai_whispers_byte_for_byte(golden):
    model, name = golden.parts[-3], golden.parts[-2]
    clip, fmt = golden.name.rsplit(".", 1)
    options = WriterOptions(**option_sets()["option_sets"][name])
    assert writers.WRITERS[fmt](openai_result(model, clip), options).encode("utf-8") == golden.read_bytes()


# --------------------------------------------------------------------- word layout: the rules themselves

def test_writer_options_refuse_limits_below_one_and_combinations_without_effect():
    for field in ("max_line_width", "max_line_count", "max_words_per_line"):
        with pytest.raises(ValueError, match=f"{field} must be >= 1"):
            WriterOptions(**{"max_line_width": 10, field: 0})
    with pytest.raises(ValueError, match="max_line_count needs max_line_width"):
        WriterOptions(max_line_count=2)
    with pytest.raises(ValueError, match="max_words_per_line has no effect"):
        WriterOptions(max_line_width=42, max_line_count=2, max_words_per_line=4)
    WriterOptions(max_line_width=42, max_words_per_line=4)  # openai-whisper warns, yet it changes the cues


def test_words_without_options_give_one_cue_per_segment_from_first_to_last_word():
    result = jfk_words()
    cues = parse_srt(writers.to_srt(result))
    assert len(cues) == len(result["segments"])
    for (_, start, end, text), seg in zip(cues, result["segments"]):
        assert text == "".join(w["word"] for w in seg["words"]).strip()
        assert abs(start - seg["words"][0]["start"]) <= MS and abs(end - seg["words"][-1]["end"]) <= MS


def test_line_width_and_count_bound_every_cue():
    result = jfk_words()
    longest_word = max(len(w["word"].strip()) for s in result["segments"] for w in s["words"])
    width, count = 16, 2
    assert longest_word <= width
    text = writers.to_vtt(result, WriterOptions(max_line_width=width, max_line_count=count))
    blocks = text[len("WEBVTT\n\n"):].rstrip("\n").split("\n\n")
    lines = [block.split("\n")[1:] for block in blocks]
    assert all(1 <= len(cue) <= count for cue in lines) and any(len(cue) == count for cue in lines)
    assert all(len(line) <= width for cue in lines for line in cue)
    spoken = " ".join(line for cue in lines for line in cue).split()
    assert spoken == " ".join(w["word"] for s in result["segments"] for w in s["words"]).split()


def test_highlight_underlines_each_word_once_in_order():
    result = jfk_words()
    words = [w for s in result["segments"] for w in s["words"]]
    underlined = [text for _, _, _, text in parse_srt(writers.to_srt(result, WriterOptions(highlight_words=True)))
                  if "<u>" in text]
    assert [re.findall(r"<u>(.*?)</u>", text) for text in underlined] == [[w["word"].strip()] for w in words]


def test_max_words_per_line_cuts_each_segment_into_short_subtitles():
    result = jfk_words()
    cues = parse_srt(writers.to_srt(result, WriterOptions(max_words_per_line=4)))
    expected = []
    for seg in result["segments"]:
        whole, rest = divmod(len(seg["words"]), 4)
        expected += [4] * whole + ([rest] if rest else [])
    assert [len(text.split()) for _, _, _, text in cues] == expected


def test_word_cues_never_hold_an_arrow():
    result = json.loads(json.dumps(jfk_words()))
    result["segments"][0]["words"][1]["word"] = " -->"
    for options in (WriterOptions(), WriterOptions(highlight_words=True)):
        srt, vtt = writers.to_srt(result, options), writers.to_vtt(result, options)
        assert srt.count("-->") == len(parse_srt(srt)) and vtt.count("-->") == len(parse_vtt(vtt))
        assert "And ->" in srt


def test_paddlex_shaped_results_with_words_lay_out_alike_and_keep_their_json():
    bare = jfk_words()
    wrapped = {"input_path": "en_jfk.wav", "result": bare}
    options = WriterOptions(max_line_width=20, highlight_words=True)
    for fmt in ("srt", "vtt", "txt", "tsv"):
        assert writers.WRITERS[fmt](wrapped, options) == writers.WRITERS[fmt](bare, options)
    assert writers.to_json(wrapped) == json.dumps(wrapped, indent=4, ensure_ascii=False)
    assert writers.to_json(bare) == json.dumps(bare)  # openai-whisper's json writer: one line, ASCII escapes


def test_write_result_hands_the_options_to_the_subtitle_writers(tmp_path):
    options = WriterOptions(max_line_width=20, max_line_count=1)
    written = write_result(jfk_words(), tmp_path, "srt,vtt,txt", stem="jfk", options=options)
    for path in written:
        assert path.read_text(encoding="utf-8") == writers.WRITERS[path.suffix[1:]](jfk_words(), options)
    assert (tmp_path / "jfk.srt").read_text(encoding="utf-8") != writers.to_srt(jfk_words())


# ------------------------------------------------------------------------------------ word layout: CLI

def test_cli_word_options_have_openai_whispers_names_types_and_defaults():
    args = build_parser().parse_args(["clip.wav"])
    assert (args.highlight_words, args.max_line_width, args.max_line_count, args.max_words_per_line) == (
        False, None, None, None)
    args = build_parser().parse_args(["clip.wav", "--highlight_words", "True", "--max_line_width", "42",
                                      "--max_line_count", "2", "--max_words_per_line", "None"])
    args.word_timestamps = True  # the flag --word_timestamps True sets
    assert writer_options(args) == WriterOptions(highlight_words=True, max_line_width=42, max_line_count=2)


@pytest.mark.parametrize("flags, message", [
    (["--highlight_words", "True"], "error: --highlight_words needs --word_timestamps True"),
    (["--max_line_width", "42"], "error: --max_line_width needs --word_timestamps True"),
    (["--max_words_per_line", "3"], "error: --max_words_per_line needs --word_timestamps True"),
    (["--max_line_count", "2"], "error: --max_line_count needs --word_timestamps True"),
])
def test_cli_refuses_word_options_without_word_timestamps(flags, message, capsys):
    assert main(["no_such_clip.wav", *flags]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


@pytest.mark.parametrize("flags, message", [
    (["--max_line_count", "2"], "--max_line_count needs --max_line_width"),
    (["--max_line_width", "0"], "--max_line_width must be >= 1"),
    (["--max_line_width", "42", "--max_line_count", "2", "--max_words_per_line", "4"],
     "--max_words_per_line has no effect with --max_line_width and --max_line_count"),
])
def test_cli_refuses_word_option_combinations_without_effect(flags, message):
    args = build_parser().parse_args(["clip.wav", *flags])
    args.word_timestamps = True  # the flag --word_timestamps True sets
    with pytest.raises(ValueError, match=message):
        writer_options(args)
