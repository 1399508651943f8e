"""Every decoding option of the CLI reaches its field, and each one changes the result it should.

The wiring is checked on the parser (each flag sets exactly its own field of DecodingOptions); the
effect is checked by transcribing real clips through the Python API, where a changed option must
show in the text, the language, the segments' temperatures or their scores.
"""

import dataclasses

import pytest

import numwhisper
from numwhisper.cli import build_parser, decoding_options
from numwhisper.decoding import DecodingOptions

DE = "golden/audio/de_picovoice_test_de.wav"
JFK = "golden/audio/en_jfk.wav"
LONG = "golden/audio/en_voxpopuli_long_000.wav"

# (command-line arguments, the DecodingOptions field they set, the value it must get)
FLAGS = [
    (["--task", "translate"], "task", "translate"),
    (["--language", "German"], "language", "German"),
    (["--temperature", "0.4"], "temperature", 0.4),
    (["--temperature_increment_on_fallback", "0.2"], "temperature_increment_on_fallback", 0.2),
    (["--beam_size", "None"], "beam_size", None),
    (["--beam_size", "3"], "beam_size", 3),
    (["--best_of", "2"], "best_of", 2),
    (["--patience", "1.5"], "patience", 1.5),
    (["--length_penalty", "0.6"], "length_penalty", 0.6),
    (["--initial_prompt", "Hello there."], "initial_prompt", "Hello there."),
    (["--condition_on_previous_text", "False"], "condition_on_previous_text", False),
    (["--compression_ratio_threshold", "None"], "compression_ratio_threshold", None),
    (["--logprob_threshold", "-0.5"], "logprob_threshold", -0.5),
    (["--no_speech_threshold", "0.3"], "no_speech_threshold", 0.3),
    (["--seed", "7"], "seed", 7),
    (["--compat", "paddlex"], "compat", "paddlex"),
]


@pytest.mark.parametrize("flags, field, value", FLAGS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_each_flag_sets_exactly_its_own_field(flags, field, value):
    options = decoding_options(build_parser().parse_args([*flags, "clip.wav"]))
    expected = dataclasses.replace(DecodingOptions(), **{field: value})
    assert options == expected


def test_no_flags_give_paddlex_defaults():
    assert decoding_options(build_parser().parse_args(["clip.wav"])) == DecodingOptions()


def test_other_flags_parse_to_their_destinations():
    args = build_parser().parse_args(["--input", "a.wav", "--input", "b.wav", "--save_path", "out", "-f", "srt",
                                      "--model_dir", "m.safetensors", "--device", "cpu", "--threads", "1",
                                      "--verbose", "False", "--pipeline", "p.yaml"])
    assert args.input == ["a.wav", "b.wav"] and args.output_dir == "out" and args.output_format == "srt"
    assert args.model_dir == "m.safetensors" and args.device == "cpu" and args.threads == 1
    assert args.verbose is False and args.pipeline == "p.yaml"


@pytest.fixture(scope="module")
def base():
    return numwhisper.load_model("base")


@pytest.fixture(scope="module")
def tiny():
    return numwhisper.load_model("tiny.en")


def result_of(model, clip, **options) -> dict:
    return model.transcribe(clip, **options)["result"]


def temperatures(result: dict) -> set:
    return {segment["temperature"] for segment in result["segments"]}


def test_language_forces_the_decoding_language(base):
    detected = result_of(base, DE, beam_size=None)
    forced = result_of(base, DE, beam_size=None, language="en")
    assert detected["language"] == "de" and "Portal" in detected["text"]
    assert forced["language"] == "en" and forced["text"] != detected["text"] and forced["text"].isascii()


def test_translate_turns_german_into_english(base):
    transcribed = result_of(base, DE, beam_size=None)
    translated = result_of(base, DE, beam_size=None, task="translate")
    assert translated["language"] == "de"  # the detected language is still reported
    assert translated["text"] != transcribed["text"] and translated["text"].strip().startswith("The ")


def test_beam_search_and_greedy_differ(tiny):
    greedy = result_of(tiny, JFK, beam_size=None)
    beam = result_of(tiny, JFK, beam_size=5)
    assert greedy["text"].startswith(" And so my") and beam["text"].startswith(" And so, my")


def test_temperature_samples_reproducibly_per_seed(tiny):
    first = result_of(tiny, JFK, beam_size=None, temperature=1.0, seed=1)
    again = result_of(tiny, JFK, beam_size=None, temperature=1.0, seed=1)
    other = result_of(tiny, JFK, beam_size=None, temperature=1.0, seed=2)
    assert first == again and first != other and temperatures(first) == {1.0}


def test_best_of_changes_how_many_samples_compete(tiny):
    five = result_of(tiny, JFK, beam_size=None, temperature=1.0, seed=1, best_of=5)
    one = result_of(tiny, JFK, beam_size=None, temperature=1.0, seed=1, best_of=1)
    assert five["segments"] != one["segments"]


@pytest.mark.parametrize("threshold", [{"logprob_threshold": 0.0}, {"compression_ratio_threshold": 0.5}],
                         ids=["logprob_threshold", "compression_ratio_threshold"])
def test_thresholds_trigger_temperature_fallback(tiny, threshold):
    """A threshold no decoding can meet makes every window try 0, 0.5 and 1.0, keeping the last."""
    fallback = result_of(tiny, JFK, beam_size=None, temperature_increment_on_fallback=0.5, **threshold)
    no_fallback = result_of(tiny, JFK, beam_size=None, temperature_increment_on_fallback=None, **threshold)
    assert temperatures(fallback) == {1.0} and temperatures(no_fallback) == {0}


def test_no_speech_threshold_drops_windows_judged_silent(tiny):
    kept = result_of(tiny, JFK, beam_size=None)
    dropped = result_of(tiny, JFK, beam_size=None, no_speech_threshold=0.0, logprob_threshold=10.0)
    assert kept["segments"] and dropped["segments"] == [] and dropped["text"] == ""


def test_initial_prompt_steers_the_punctuation(tiny):
    plain = result_of(tiny, JFK)
    prompted = result_of(tiny, JFK, initial_prompt="ASK NOT. WHAT YOUR COUNTRY CAN DO FOR YOU.")
    assert "for you ask" in plain["text"] and "for you. Ask" in prompted["text"]


def test_condition_on_previous_text_changes_later_windows(tiny):
    conditioned = result_of(tiny, LONG, beam_size=None)
    unconditioned = result_of(tiny, LONG, beam_size=None, condition_on_previous_text=False)
    first_seek = conditioned["segments"][0]["seek"]
    later = [s for s in conditioned["segments"] if s["seek"] != first_seek]
    later_free = [s for s in unconditioned["segments"] if s["seek"] != first_seek]
    assert later and later != later_free
    assert [s for s in conditioned["segments"] if s["seek"] == first_seek] == \
        [s for s in unconditioned["segments"] if s["seek"] == first_seek]  # window 0 has no previous text


def test_patience_changes_how_many_finished_beams_are_awaited(tiny):
    default = result_of(tiny, JFK)
    impatient = result_of(tiny, JFK, patience=0.5)  # stop after round(5 * 0.5) = 2 finished candidates
    assert impatient["segments"] != default["segments"]


def test_length_penalty_changes_the_ranking_of_candidates(tiny):
    clip = "golden/audio/en_ljspeech_LJ001-0001.wav"
    by_length = result_of(tiny, clip)
    by_alpha = {alpha: result_of(tiny, clip, length_penalty=alpha) for alpha in (0.0, 1.0)}
    assert by_alpha[0.0]["segments"] != by_length["segments"]
    assert by_alpha[1.0]["segments"] != by_length["segments"]


def test_english_only_models_refuse_another_language(tiny):
    with pytest.raises(ValueError, match="English-only: it cannot transcribe language 'de'"):
        tiny.transcribe(JFK, beam_size=None, language="de")
    assert result_of(tiny, JFK, beam_size=None, language="English")["language"] == "en"
    as_paddlex = result_of(tiny, JFK, beam_size=None, language="de", compat="paddlex")  # PaddleX decodes English
    assert words_of(as_paddlex["text"]) == words_of(result_of(tiny, JFK, beam_size=None)["text"])


def words_of(text: str) -> list:
    return text.lower().replace(",", "").replace(".", "").split()
