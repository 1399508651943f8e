"""Whisper's languages and the layout of the special tokens around them.

A Whisper vocabulary holds its text tokens, then <|endoftext|>, <|startoftranscript|>, one token per
language (in the order of ``LANGUAGES``; <|en|> first), the task and control tokens, and the
timestamps. Models up to large-v2 have 99 language tokens; large-v3 (and turbo) add Cantonese,
<|yue|>, as the 100th, so their vocabulary has 51,866 entries and every later special id moves by one. Codes are OpenAI's; PaddleX names Hebrew ``iw`` instead of ``he``, and both are accepted
as input, as are English names.
"""

LANGUAGES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}

# PaddleX's spelling of a language code -> OpenAI's.
PADDLEX_CODE_ALIASES = {"iw": "he"}
_OPENAI_TO_PADDLEX = {code: alias for alias, code in PADDLEX_CODE_ALIASES.items()}


def paddlex_code(code: str) -> str:
    """An OpenAI language code as PaddleX spells it in results and vocabularies (Hebrew is "iw")."""
    return _OPENAI_TO_PADDLEX.get(code, code)


# Language names PaddleX also accepts (besides the English names of LANGUAGES).
LANGUAGE_NAME_ALIASES = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht",
    "letzeburgesch": "lb", "pushto": "ps", "panjabi": "pa", "moldavian": "ro",
    "moldovan": "ro", "sinhalese": "si", "castilian": "es",
}

EOT_TEXT = "<|endoftext|>"
SOT_TEXT = "<|startoftranscript|>"
# The special tokens after the language tokens, in id order: (OpenAI's spelling, the spelling of the
# Hugging Face / CTranslate2 vocabulary files).
CONTROL_TOKENS = (
    ("<|translate|>", "<|translate|>"), ("<|transcribe|>", "<|transcribe|>"),
    ("<|startoflm|>", "<|startoflm|>"), ("<|startofprev|>", "<|startofprev|>"),
    ("<|nospeech|>", "<|nocaptions|>"), ("<|notimestamps|>", "<|notimestamps|>"),
)
N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>, one every 0.02 s: the last entries of every vocabulary
ENGLISH_ONLY_VOCAB = 51864  # entries of the English-only (GPT-2) vocabulary; multilingual ones have more
N_LANGUAGES_BEFORE_V3 = 99   # language tokens of every vocabulary before large-v3's
# Entries of a vocabulary that are not language tokens: 50,257 GPT-2 tokens (50,256 + <|endoftext|>),
# <|startoftranscript|>, 6 control tokens and 1,501 timestamps, plus one more text token in the
# multilingual vocabulary.
NON_LANGUAGE_ENTRIES = ENGLISH_ONLY_VOCAB - N_LANGUAGES_BEFORE_V3


def is_multilingual(n_vocab: int) -> bool:
    """Whether a vocabulary of ``n_vocab`` entries has language tokens (51865, or 51866 for large-v3)."""
    return n_vocab > ENGLISH_ONLY_VOCAB


def n_languages(n_vocab: int) -> int:
    """Language tokens in a Whisper vocabulary of ``n_vocab`` entries: 99, or 100 from large-v3 on."""
    return n_vocab - NON_LANGUAGE_ENTRIES - int(is_multilingual(n_vocab))


def language_code(language: str) -> str:
    """A code of LANGUAGES from a code, PaddleX's code ("iw") or an English name; ValueError if unknown."""
    key = language.lower()
    key = PADDLEX_CODE_ALIASES.get(key, key)
    if key in LANGUAGES:
        return key
    by_name = {name: code for code, name in LANGUAGES.items()}
    code = by_name.get(key) or LANGUAGE_NAME_ALIASES.get(key)
    if code is None:
        raise ValueError(f"unsupported language: {language!r}")
    return code


def whisper_added_tokens(eot_id: int, n_languages: int = N_LANGUAGES_BEFORE_V3) -> dict:
    """The special tokens of a Whisper vocabulary file whose <|endoftext|> has id ``eot_id`` and which
    has ``n_languages`` language tokens (99, or 100 with <|yue|>)."""
    if n_languages not in (N_LANGUAGES_BEFORE_V3, len(LANGUAGES)):
        raise ValueError(f"a Whisper vocabulary has {N_LANGUAGES_BEFORE_V3} or {len(LANGUAGES)} languages, not {n_languages}")
    names = [EOT_TEXT, SOT_TEXT, *(f"<|{code}|>" for code in tuple(LANGUAGES)[:n_languages])]
    names += [in_files for _, in_files in CONTROL_TOKENS]
    return {name: eot_id + i for i, name in enumerate(names)}
