"""The command line's options, on the parser: each decoding flag sets exactly its own field of
DecodingOptions, no flag gives PaddleX's defaults, and the other flags reach their destinations.

What an option does to a transcription is tested in test_decoding_behaviour.py; the CLI's refusal of
bad values, in a subprocess, in test_cli.py.
"""

import dataclasses

import pytest

from numwhisper.cli import build_parser, decoding_options
from numwhisper.decoding import DecodingOptions, openai_defaults

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
    (["--word_timestamps", "True"], "word_timestamps", True),
    (["--prepend_punctuations", "\"("], "prepend_punctuations", "\"("),
    (["--append_punctuations", ".,"], "append_punctuations", ".,"),
]

# The same with --compat openai: the flags set their fields of openai-whisper's defaults.
OPENAI_FLAGS = [
    (["--temperature_increment_on_fallback", "None"], "temperature_increment_on_fallback", None),
    (["--temperature", "0.2"], "temperature", 0.2),
    (["--clip_timestamps", "1.5,9"], "clip_timestamps", "1.5,9"),
    (["--carry_initial_prompt", "True"], "carry_initial_prompt", True),
    (["--word_timestamps", "True", "--hallucination_silence_threshold", "2"], "hallucination_silence_threshold", 2.0),
]


@pytest.mark.parametrize("flags, field, value", FLAGS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_each_flag_sets_exactly_its_own_field(flags, field, value):
    options = decoding_options(build_parser().parse_args([*flags, "clip.wav"]))
    expected = dataclasses.replace(DecodingOptions(), **{field: value})
    assert options == expected


def test_no_flags_give_paddlex_defaults():
    assert decoding_options(build_parser().parse_args(["clip.wav"])) == DecodingOptions()


def test_compat_openai_alone_gives_openai_whispers_command_line_defaults():
    options = decoding_options(build_parser().parse_args(["--compat", "openai", "clip.wav"]))
    assert options == openai_defaults()
    assert options.temperatures == (0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0)  # np.arange, as its CLI
    assert options.beam_size == 5 and options.best_of == 5


@pytest.mark.parametrize("flags, field, value", OPENAI_FLAGS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_with_compat_openai_each_flag_sets_its_field_of_openai_whispers_defaults(flags, field, value):
    options = decoding_options(build_parser().parse_args(["--compat", "openai", *flags, "clip.wav"]))
    changes = {field: value, **({"word_timestamps": True} if "--word_timestamps" in flags else {})}
    assert options == openai_defaults(**changes)


@pytest.mark.parametrize("flags, message", [
    (["--clip_timestamps", "1,2"], "needs compat"),
    (["--carry_initial_prompt", "True"], "needs compat"),
    (["--compat", "openai", "--hallucination_silence_threshold", "1"], "needs word_timestamps"),
])
def test_openai_only_options_are_refused_in_paddlex_mode_and_need_their_partners(flags, message):
    with pytest.raises(ValueError, match=message):
        decoding_options(build_parser().parse_args([*flags, "clip.wav"]))


def test_other_flags_parse_to_their_destinations():
    args = build_parser().parse_args(["--input", "a.wav", "--input", "b.wav", "--save_path", "out", "-f", "srt",
                                      "--model_dir", "m.safetensors", "--device", "cpu", "--threads", "1",
                                      "--verbose", "False", "--pipeline", "p.yaml", "--max_audio_seconds", "60"])
    assert args.input == ["a.wav", "b.wav"] and args.output_dir == "out" and args.output_format == "srt"
    assert args.model_dir == "m.safetensors" and args.device == "cpu" and args.threads == 1
    assert args.verbose is False and args.pipeline == "p.yaml" and args.max_audio_seconds == 60.0
    assert build_parser().parse_args(["--max-audio-seconds", "90", "a.wav"]).max_audio_seconds == 90.0

