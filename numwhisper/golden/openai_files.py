"""Read openai-whisper's goldens (``golden/openai/``) and report how a result differs from them.

NumPy + safetensors only. ``golden/generate_openai.py`` writes the files and
``golden/openai/README.md`` describes them. In short:

    openai/<model>/<config>/<clip>.json                 openai-whisper's transcribe result (words included)
    openai/<model>/alignment/<clip>.safetensors         one window's forced alignment, step by step
    openai/<model>/paddlex_words/<config>/<clip>.json   its word timing of a PaddleX golden's segments
    openai/manifest.json                                versions, models, configs, cases, checksums

Words are compared as the issue that introduced them asks: the same words in the same order, times
on the 20 ms grid equal for at least ``WORD_TIMES_EXACT_SHARE`` of them and within ``WORD_TIME_ATOL``
for all, probabilities within ``WORD_PROBABILITY_ATOL``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..decoding import COMPAT_OPENAI, DecodingOptions
from . import files
from .tolerances import RESULT_SCORE_ATOL, WORD_PROBABILITY_ATOL, WORD_TIME_ATOL

OPENAI_DIR = "openai"
OPENAI_CONFIGS = ("cli", "greedy", "options")
FORMAT_VERSION = "1"


@dataclass(frozen=True)
class OpenAICase:
    """One openai-whisper golden: a model, a config of manifest["configs"] and a clip."""

    model: str
    config: str
    clip: str

    @property
    def name(self) -> str:
        return f"{self.model}/{self.config}/{self.clip}"


def openai_root(root: Path = files.GOLDEN_DIR) -> Path:
    """golden/openai/ inside a golden folder."""
    return Path(root) / OPENAI_DIR


def manifest(root: Path = files.GOLDEN_DIR) -> dict:
    """openai/manifest.json (versions, models, configs, cases with their segment and word counts)."""
    data = json.loads((openai_root(root) / "manifest.json").read_text(encoding="utf-8"))
    if data["golden_format_version"] != FORMAT_VERSION:
        raise ValueError(f"openai golden format {data['golden_format_version']}, this reader reads {FORMAT_VERSION}")
    return data


def cases(root: Path = files.GOLDEN_DIR, configs: Sequence[str] = OPENAI_CONFIGS) -> list:
    """Every openai golden of the given configs, sorted by name."""
    found = []
    for name in manifest(root)["cases"]:
        model, config, clip = name.split("/")
        if config in configs:
            found.append(OpenAICase(model, config, clip))
    return found


def load_result(case: OpenAICase, root: Path = files.GOLDEN_DIR) -> dict:
    """openai-whisper's result dict {"text", "segments", "language"} of a case."""
    path = openai_root(root) / case.model / case.config / f"{case.clip}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def load_paddlex_words(model: str, config: str, clip: str, root: Path = files.GOLDEN_DIR) -> dict:
    """openai-whisper's word timing of a PaddleX golden's segments: {"segments": [{"id", "words", ...}]}."""
    path = openai_root(root) / model / "paddlex_words" / config / f"{clip}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def alignment_path(model: str, clip: str, root: Path = files.GOLDEN_DIR) -> Path:
    """Where one window's step-by-step forced alignment is stored."""
    return openai_root(root) / model / "alignment" / f"{clip}.safetensors"


def options_for(config: str, root: Path = files.GOLDEN_DIR, **overrides) -> DecodingOptions:
    """compat="openai" DecodingOptions equal to the transcribe() kwargs of an openai golden config."""
    kwargs = manifest(root)["configs"][config]
    temperatures = [float(t) for t in kwargs["temperature"]]
    step = round(temperatures[1] - temperatures[0], 6) if len(temperatures) > 1 else None
    options = DecodingOptions(
        temperature=temperatures[0], temperature_increment_on_fallback=step,
        beam_size=kwargs["beam_size"], best_of=kwargs["best_of"], patience=kwargs["patience"],
        length_penalty=kwargs["length_penalty"], suppress_tokens=kwargs["suppress_tokens"],
        initial_prompt=kwargs["initial_prompt"], carry_initial_prompt=kwargs["carry_initial_prompt"],
        condition_on_previous_text=kwargs["condition_on_previous_text"],
        compression_ratio_threshold=kwargs["compression_ratio_threshold"],
        logprob_threshold=kwargs["logprob_threshold"], no_speech_threshold=kwargs["no_speech_threshold"],
        word_timestamps=kwargs["word_timestamps"], prepend_punctuations=kwargs["prepend_punctuations"],
        append_punctuations=kwargs["append_punctuations"], clip_timestamps=kwargs["clip_timestamps"],
        hallucination_silence_threshold=kwargs["hallucination_silence_threshold"], compat=COMPAT_OPENAI,
        **overrides)
    if tuple(options.temperatures) != tuple(temperatures):
        raise ValueError(f"openai golden config {config}: temperatures {temperatures} are not an np.arange "
                         f"fallback series (ours {options.temperatures})")
    return options


# ---------------------------------------------------------------------------------- words


@dataclass(frozen=True)
class WordComparison:
    """How one list of words compares with the reference's: counts, worst differences, problems."""

    words: int
    times_equal: int  # words whose start and end both equal the reference's
    worst_time: float
    worst_probability: float
    problems: tuple

    @property
    def exact_share(self) -> float:
        return self.times_equal / self.words if self.words else 1.0


def compare_words(ours: Sequence[dict], theirs: Sequence[dict], where: str,
                  probabilities: bool = True) -> WordComparison:
    """Words against the reference's: same text in order, times within WORD_TIME_ATOL, probability
    within WORD_PROBABILITY_ATOL (when ``probabilities``). Times are counted equal when they differ by
    less than a microsecond (both lie on the 20 ms grid, rounded to 2 decimals)."""
    problems = []
    if [w["word"] for w in ours] != [w["word"] for w in theirs]:
        problems.append(f"{where}: words ours {[w['word'] for w in ours]} != {[w['word'] for w in theirs]}")
        return WordComparison(len(theirs), 0, float("inf"), float("inf"), tuple(problems))
    equal, worst_time, worst_probability = 0, 0.0, 0.0
    for k, (mine, ref) in enumerate(zip(ours, theirs)):
        diff = max(abs(mine["start"] - ref["start"]), abs(mine["end"] - ref["end"]))
        equal += diff < 1e-6
        worst_time = max(worst_time, diff)
        if diff > WORD_TIME_ATOL + 1e-9:
            problems.append(f"{where} word {k} {ref['word']!r}: ours {mine['start']}-{mine['end']} vs "
                            f"{ref['start']}-{ref['end']} (atol {WORD_TIME_ATOL})")
        if probabilities:
            p = abs(mine["probability"] - ref["probability"])
            worst_probability = max(worst_probability, p)
            if p > WORD_PROBABILITY_ATOL:
                problems.append(f"{where} word {k} {ref['word']!r}: probability ours {mine['probability']} vs "
                                f"{ref['probability']} (atol {WORD_PROBABILITY_ATOL})")
    return WordComparison(len(theirs), equal, worst_time, worst_probability, tuple(problems))


def result_differences(ours: dict, theirs: dict, words: bool = True,
                       score_atol: float = RESULT_SCORE_ATOL) -> tuple:
    """(problems as readable lines, WordComparison over every segment's words) of a result against
    openai-whisper's: every exact field equal, scores within tolerance, words as ``compare_words``."""
    problems = files.result_differences(ours, theirs, score_atol=score_atol, reference="openai-whisper")
    total = WordComparison(0, 0, 0.0, 0.0, ())
    if words:
        for mine, ref in zip(ours["segments"], theirs["segments"]):
            found = compare_words(mine.get("words", []), ref.get("words", []), f"segment {ref['id']}")
            total = WordComparison(total.words + found.words, total.times_equal + found.times_equal,
                                   max(total.worst_time, found.worst_time),
                                   max(total.worst_probability, found.worst_probability),
                                   total.problems + found.problems)
        problems += list(total.problems)
    return problems, total


def words_of(segments: Sequence[dict]) -> list:
    """Every word of a result's segments, in order."""
    return [w for s in segments for w in s.get("words", [])]


def first_sampled_window(result: dict) -> Optional[int]:
    """The seek of the first window openai-whisper decoded at a temperature above 0 (sampling, whose
    random draws are torch's and cannot be reproduced), or None."""
    seeks = [s["seek"] for s in result["segments"] if s["temperature"] > 0]
    return min(seeks) if seeks else None
