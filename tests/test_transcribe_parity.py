"""Whole transcriptions vs PaddleX's: every golden clip, both models, both decoding configs.

compat="paddlex": text, language and every segment's id, seek, start, end, text, tokens and
temperature are exactly PaddleX's (same values and types, same key order); avg_logprob,
no_speech_prob and compression_ratio agree within RESULT_SCORE_ATOL.

Default settings (PaddleX's bugs fixed): beam search is checked the same way. Greedy decoding differs
from PaddleX in one documented place only: PaddleX never sums the greedy log-probabilities (its
avg_logprob is always 0.0); ours are real. The test checks every other field exactly and checks the
real value against PaddleX's own beam-search score of the same tokens where the two searches agree.

The decoding options come from the decode kwargs PaddleX itself built (golden manifest "configs").

Words: on the NumPy backend the compat transcriptions run with word_timestamps=True, so every
golden result is checked to be unchanged by words, and the words are checked against openai-whisper's
word timing of the same segments (golden/openai/<model>/paddlex_words): the same words, times within
WORD_TIME_ATOL, at least WORD_TIMES_EXACT_SHARE of them equal over all results.

Backends: the compat test runs on the NumPy backend ("numpy") and on the Paddle backend on the CPU
("paddle-cpu"), all but PADDLE_LEFT_OUT (see there); the default-settings tests run on numpy only,
since what they check (PaddleX's bugs fixed) is decoding, shared by every backend. On the CPU the
Paddle backend reproduces the golden tensors bit for bit and the parity command passes all 42
results with it, so the near-ties below do not arise there.

Near-ties: our decoder logits differ from PaddleX's by at most 3e-5..7e-5 per clip (3.1e-4 on
zh_sr_chinese); window scores agree to ~1e-6. Two decisions in the goldens are closer than that
logit error and went PaddleX's way; NEAR_TIES names them, with the margins measured on our side
(compat mode), and a failure of those cases says so. Nothing is skipped and no tolerance is widened.
"""

import csv
import dataclasses

import pytest

from numwhisper.golden import check as golden_check
from numwhisper.golden import files as golden
from numwhisper.golden import openai_files
from numwhisper.golden.tolerances import RESULT_SCORE_ATOL, WORD_TIMES_EXACT_SHARE
from numwhisper.transcription import transcribe

from conftest import BACKEND_DEVICES

CASES = golden.cases()
CASE_IDS = [f"{c.model}/{c.clip}" for c in CASES]
COMPAT = "paddlex"
NEAR_TIES = {
    ("base", "en_voxpopuli_long_000", "greedy"): (
        "first window (seek 0), 19th sampled token: argmax <|9.68|> (50848) beats <|9.92|> (50860) by 7.6e-5 "
        "in logits, about the measured logit error of this clip (7.3e-5)"),
    ("base", "en_voxpopuli_long_000", "beam5"): (
        "first window (seek 0), final ranking: the chosen 59-token candidate's sum/length beats a 57-token one by "
        "4.7e-5, below the measured logit error of this clip (7.3e-5)"),
}


@pytest.fixture(scope="session")
def transcripts(model_for, encoder_memo):
    """Transcribe on demand, once per (backend, model, clip, config, compat) in the session.

    The transcriptions of a clip on one backend share the encoder's work with each other and with
    test_model_parity (``golden_check.shared_encoder``: its output depends only on the backend and
    the window).
    """
    done, shared_encode = {}, golden_check.shared_encoder(encoder_memo)

    def get(case: golden.Case, config: str, compat, backend_id: str = "numpy") -> dict:
        key = (backend_id, case.model, case.clip, config, compat)
        if key not in done:
            path = f"golden/audio/{case.clip}.wav"
            options = golden_check.options_for(config, compat)
            if words_checked(backend_id, compat):
                options = dataclasses.replace(options, word_timestamps=True)
            done[key] = transcribe(model_for(backend_id, case.model), path, options, encode=shared_encode)
        return done[key]

    return get


# The Paddle backend on the CPU (Paddle's one thread) takes ~5 s per encoder window and ~75 ms per
# beam-search step here, so its beam-5 transcriptions of the three long clips (89 s together in the suite,
# measured on a busy machine) are left to the parity command, `python -m numwhisper.golden check --backend
# paddle`, which runs all 42 results and passes them (as this test did when they were included).
PADDLE_LEFT_OUT = {
    ("base", "en_voxpopuli_long_000", "beam5"),
    ("tiny.en", "en_voxpopuli_long_000", "beam5"),
    ("base", "mix_en_de_fasterwhisper_multilingual", "beam5"),
}


def words_checked(backend_id: str, compat) -> bool:
    """Whether a transcription runs with word timestamps: the compat ones on the NumPy backend."""
    return backend_id == "numpy" and compat == COMPAT


def without_words(result: dict) -> tuple:
    """(the result body with the segments' words taken out, the words of each segment)."""
    segments = [{k: v for k, v in s.items() if k != "words"} for s in result["segments"]]
    return {**result, "segments": segments}, [s.get("words", []) for s in result["segments"]]


def word_comparisons(case: golden.Case, config: str, words: list) -> list:
    """Each segment's words against openai-whisper's timing of the same segment (openai_files.compare_words)."""
    reference = openai_files.load_paddlex_words(case.model, config, case.clip)["segments"]
    assert len(words) == len(reference)
    return [openai_files.compare_words(mine, ref["words"], f"segment {ref['id']}") for mine, ref in zip(words, reference)]


def near_tie_note(case: golden.Case, config: str) -> str:
    """A known near-tie of this case, to read with a failure."""
    note = NEAR_TIES.get((case.model, case.clip, config))
    return f"\nknown near-tie of this case: {note}" if note else ""


def check_envelope(result: dict, case: golden.Case) -> None:
    """The PaddleX-shaped envelope: {"input_path": the path given, "result": {...}}."""
    assert list(result) == ["input_path", "result"]
    assert result["input_path"] == f"golden/audio/{case.clip}.wav"


def compat_params() -> list:
    """(backend id, case, config) of the compat test: everything on numpy, PADDLE_LEFT_OUT aside on paddle-cpu."""
    return [pytest.param(backend_id, case, config, id=f"{backend_id}-{case.model}/{case.clip}-{config}")
            for backend_id in BACKEND_DEVICES for case in CASES for config in golden.CONFIGS
            if backend_id == "numpy" or (case.model, case.clip, config) not in PADDLE_LEFT_OUT]


@pytest.mark.parametrize("backend_id, case, config", compat_params())
def test_compat_paddlex_gives_paddlex_result(backend_id, case, config, transcripts, repo, monkeypatch):
    """compat="paddlex" reproduces PaddleX's result, bugs included (greedy avg_logprob 0.0), on every backend."""
    monkeypatch.chdir(repo)
    result = transcripts(case, config, COMPAT, backend_id)
    check_envelope(result, case)
    body, words = without_words(result["result"])
    problems = golden.result_differences(body, golden.load_result(case.model, case.clip, config)["result"])
    assert not problems, "\n".join(problems) + near_tie_note(case, config)
    if words_checked(backend_id, COMPAT):
        problems = [p for c in word_comparisons(case, config, words) for p in c.problems]
        assert not problems, "\n".join(problems)


def test_words_of_paddlexs_segments_mostly_have_openai_whispers_times_exactly(transcripts, repo, monkeypatch):
    monkeypatch.chdir(repo)
    compared = [c for case in CASES for config in golden.CONFIGS
                for c in word_comparisons(case, config, without_words(transcripts(case, config, COMPAT)["result"])[1])]
    n_words, equal = sum(c.words for c in compared), sum(c.times_equal for c in compared)
    assert n_words >= 1500, n_words
    assert equal / n_words >= WORD_TIMES_EXACT_SHARE, f"{equal} of {n_words} words with both times equal"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_default_beam_search_gives_paddlex_result(case, transcripts, repo, monkeypatch):
    """With default settings beam search (PaddleX's default config) gives PaddleX's result too."""
    monkeypatch.chdir(repo)
    result = transcripts(case, "beam5", None)
    check_envelope(result, case)
    problems = golden.result_differences(result["result"], golden.load_result(case.model, case.clip, "beam5")["result"])
    assert not problems, "\n".join(problems) + near_tie_note(case, "beam5")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_default_greedy_differs_only_by_real_logprob(case, transcripts, repo, monkeypatch):
    """Default greedy = PaddleX's greedy except avg_logprob, which is real instead of PaddleX's 0.0.

    Where greedy and beam search decoded the same tokens for the first window, the real value must
    equal PaddleX's own (correctly summed) beam-search avg_logprob of those tokens.
    """
    monkeypatch.chdir(repo)
    ours = transcripts(case, "greedy", None)["result"]
    theirs = golden.load_result(case.model, case.clip, "greedy")["result"]
    problems = golden.result_differences(ours, theirs, skip=("avg_logprob",))
    assert not problems, "\n".join(problems) + near_tie_note(case, "greedy")
    for segment in theirs["segments"]:
        assert segment["avg_logprob"] == 0.0  # PaddleX's bug, reproduced only in compat mode
    for segment in ours["segments"]:
        assert segment["avg_logprob"] < 0.0, f"segment {segment['id']}: avg_logprob not summed"
    beam = golden.load_result(case.model, case.clip, "beam5")["result"]["segments"]
    first = [s for s in ours["segments"] if s["seek"] == 0]
    first_beam = [s for s in beam if s["seek"] == 0]
    if first and first_beam and first[0]["tokens"] == first_beam[0]["tokens"]:
        assert abs(first[0]["avg_logprob"] - first_beam[0]["avg_logprob"]) <= RESULT_SCORE_ATOL, (
            f"greedy {first[0]['avg_logprob']} vs PaddleX beam {first_beam[0]['avg_logprob']} on the same tokens")


def test_paddle_left_out_names_real_cases():
    """Only named beam-5 cases of long clips are left out on paddle-cpu, and each one exists."""
    cases = {(c.model, c.clip) for c in CASES}
    assert all((model, clip) in cases and config == "beam5" for model, clip, config in PADDLE_LEFT_OUT)


def test_every_golden_clip_and_result_is_covered():
    """base on every clip, tiny.en on the English ones, both configs: nothing silently left out."""
    with open(golden.GOLDEN_DIR / "audio" / "manifest.tsv", encoding="utf-8") as f:
        languages = {row["file"].removesuffix(".wav"): row["language"] for row in csv.DictReader(f, delimiter="\t")}
    english = {clip for clip, language in languages.items() if language == "en"}
    expected = {("base", clip) for clip in languages} | {("tiny.en", clip) for clip in english}
    assert {(c.model, c.clip) for c in CASES} == expected
    files = (golden.GOLDEN_DIR / "results").glob("*/*/*.json")
    assert {(p.parts[-3], p.parts[-2], p.stem) for p in files} == {
        (model, config, clip) for model, clip in expected for config in golden.CONFIGS}
