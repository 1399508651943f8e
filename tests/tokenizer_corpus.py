"""A deterministic corpus of texts (and of token-id lists) for the tokenizer tests.

The same corpus feeds golden/make_tokenizer_golden.py (PaddleX's tokenizer, in the reference
environment) and tests/test_tokenizer.py, so it must come out identical on every run and every
Python version: it is built from fixed text, fixed code-point ranges (all assigned long before
Unicode 14) and ``random.Random`` with fixed seeds. Texts never contain a special-token spelling
such as "<|en|>" (PaddleX would read it as that special token).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
AUDIO_MANIFEST = GOLDEN / "audio" / "manifest.tsv"
REFERENCE_TEXTS = GOLDEN / "tokenizer" / "reference_texts.tsv"
SEED = 20240531
SPECIAL_SPELLING = re.compile(r"<\|[^|]*\|>")

SENTENCES = {
    "en": "The quick brown fox jumps over the lazy dog.",
    "fr": "Le petit chat dort sur le canapé depuis ce matin, n'est-ce pas ?",
    "de": "Übermorgen fährt der Zug um acht Uhr von der Straßenbahnhaltestelle ab.",
    "es": "¿Dónde está la estación de tren? ¡Muchas gracias, señora!",
    "pt": "A canção começa às três horas e não termina antes da meia-noite.",
    "it": "Perché la città è così tranquilla questa sera?",
    "pl": "Zażółć gęślą jaźń, pchnąć w tę łódź jeża lub ośm skrzyń fig.",
    "ru": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "uk": "Добрий день, як справи? Їжак і ґава грають у саду.",
    "zh": "今天天气很好，我们去公园散步吧。",
    "zh-Hant": "我們明天早上八點在車站見面。",
    "ja": "東京駅で新幹線に乗り換えてください。ありがとうございます！",
    "ko": "안녕하세요, 오늘 날씨가 정말 좋네요.",
    "ar": "مرحبا بالعالم، كيف حالك اليوم؟",
    "he": "שלום עולם, מה שלומך היום?",
    "hi": "नमस्ते दुनिया, आज मौसम बहुत अच्छा है।",
    "th": "สวัสดีครับ วันนี้อากาศดีมาก",
    "el": "Καλημέρα κόσμε, τι κάνεις σήμερα;",
    "tr": "Bugün hava çok güzel, İstanbul'a gidiyoruz.",
    "vi": "Xin chào thế giới, hôm nay trời đẹp quá.",
    "nl": "Het is vandaag mooi weer in Amsterdam.",
    "sv": "Hej världen, hur mår du i dag?",
    "cs": "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "hu": "Árvíztűrő tükörfúrógép.",
    "fi": "Hyvää huomenta, mitä kuuluu?",
    "no": "Blåbærsyltetøy er godt på brødskiver.",
    "ro": "Bună ziua, ce mai faci? Știință și țară.",
    "id": "Selamat pagi, apa kabar?",
    "fa": "سلام دنیا، حال شما چطور است؟",
    "ur": "آپ کیسے ہیں؟",
    "bn": "আমি বাংলায় গান গাই।",
    "ta": "வணக்கம் உலகம்",
    "te": "నమస్కారం",
    "ka": "გამარჯობა მსოფლიო",
    "hy": "Բարեւ աշխարհ",
    "am": "ሰላም ለዓለም",
    "km": "សួស្តីពិភពលោក",
    "lo": "ສະບາຍດີ",
    "my": "မင်္ဂလာပါ",
    "bo": "བཀྲ་ཤིས་བདེ་ལེགས།",
    "si": "ආයුබෝවන්",
    "yi": "גוט מאָרגן",
    "mn": "Сайн байна уу",
    "kk": "Сәлеметсіз бе",
    "sw": "Habari ya asubuhi",
    "haw": "Aloha kākou",
    "is": "Þetta er íslenska með ð og þ.",
}

EMOJI = [
    "😀", "😀😃😄", "👍", "👍🏽", "👋🏿👋🏻", "❤️", "❤", "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏾‍🚀", "🏳️‍🌈", "🇯🇵", "🇩🇪🇫🇷",
    "1️⃣", "#️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🎉🎊", "🤖", "☕", "✅❌", "♪♪♪", "♩♫♬", "🎵 la la 🎶",
    "I ❤️ NY", "ok👌", "😂😂😂😂", "🙏🏼 thanks",
]

COMBINING = [
    "e\u0301", "cafe\u0301", "a\u0308\u0323", "n\u0303o", "Z\u0351\u0334a\u0337l\u0338g\u0335o\u0336",
    "\u0915\u094d\u0937", "\u1112\u1161\u11ab\u1100\u1173\u11af",  # Devanagari conjunct, Hangul jamo
    "Vie\u0323\u0302t Nam", "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd",
    "\u0645\u064f\u062d\u064e\u0645\u0651\u064e\u062f",
    "x\u20dd", "1\u20e3", "a\u200db", "a\u200cb", "\u200b", "soft\u00adhyphen", "\ufeffbom",
    "\u0301leading mark", "\u0300\u0301\u0302",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "3.14159", "1,000,000", "12:30", "2024-01-01", "-42", "+7",
    "10%", "1e-5", "0x1F", "$19.99", "€5", "١٢٣", "۱۲۳", "५६७", "১২৩", "๑๒๓", "½ ¾", "x²+y³", "Ⅻ", "ⅷ",
    "①②③", "１２３", "第3章", "3rd", "21st century", "1990s", "007", "1 2 3", "one 2 three",
    "12345678901234567890", "3.0.1", "v2", "A4", "ℵ0",
]

WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", " \t ", "\u00a0", "\u3000",
              "\u2003", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\u1680", "\u202f", "\x1c", "\x1f"]

CONTRACTIONS = [
    "it's", "IT'S", "It'S", "don't", "DON'T", "we're", "WE'RE", "they've", "THEY'VE", "I'm", "I'M",
    "you'll", "YOU'LL", "he'd", "HE'D", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE",
    "'VE", "'M", "'LL", "'D", "''s", "'''", "' s", "rock 'n' roll", "it’s", "'sam", "'tis", "'dog",
    "y'all'd've", "o'clock", "don't 's", " 's", "  's", "\n's", "'s's", "I'd've", "'ll'", "'", "''",
    "Ma'am", "ne'er", "'12", "'99 vintage", "s'", "x's y're z'll",
]

PUNCTUATION = [
    ".", "...", "…", "?!", "!!!", "--", "—", "–", "«»", "« oui »", "¿¡", "()", "[[", "]]", "{{}}", "<<<",
    ">>>", "<< >>", "「」", "『』", "、。", ".,;:", "@#$%^&*", "~`|\\", "\"quoted\"", "'single'", "“curly”",
    "‘curly’", "(' (\" -( -[", "((( )))", "_under_score_", "a/b\\c", "::", "?", " ?", " !", " .", " ,",
    "a , b . c ! d ? e", "he said , \" hi \" .", "a - b", "-", " -", " '", "' ", "* * *", "***", "#1",
    "http://example.com/a?b=c&d=e", "user@example.com", "C++ / C#", "100°C", "±0.5", "→ ← ↑ ↓", "§2 ¶3",
]

MIXED = [
    "Hello世界", "abc123def", "Москва2024", "naïve café", "iPhone15Pro", "東京Tokyo東京", "العربيةEnglish",
    "Ελληνικά and English", "한국어English日本語", "Straße vs STRASSE", "ǅemal", "ﬁne ﬂow", "ΑΒΓ abc",
    "x=1;y=2", "snake_case_name", "CamelCaseName", "kebab-case-name", "dot.separated.name",
    "tab\tseparated\tvalues", "line one\nline two\n\nline four", "trailing spaces   ", "   leading spaces",
    " mixed \t whitespace \n here ", "Ünïcödé", "İı", "ß", "ẞ", "Ꭰꭰ", "ʼapostrophe", "ʻokina",
    "שלום hello مرحبا", "हिन्दी English", "ไทยEnglish", "中文，English, 日本語。", "No. 5 № 5",
    "𝐇𝐞𝐥𝐥𝐨 𝟏𝟐𝟑", "𠀀𠀁𠀂 text", "𐌰𐌱𐌲 goths", "𐐀𐐨 deseret", "𰀀𰀁", "𝟘𝟙𝟚", "x𝐀1𝟙",
]

# Blocks assigned since before Unicode 13 (so every Python from 3.10 knows them the same way).
RANDOM_RANGES = [
    (0x20, 0x7E), (0xA0, 0xFF), (0x100, 0x24F), (0x250, 0x2AF), (0x300, 0x36F), (0x391, 0x3A1),
    (0x3A3, 0x3FF), (0x400, 0x4FF), (0x531, 0x556), (0x561, 0x586), (0x5D0, 0x5EA), (0x620, 0x64A),
    (0x64B, 0x65F), (0x660, 0x669), (0x900, 0x97F), (0xE01, 0xE3A), (0xE3F, 0xE5B), (0x10A0, 0x10C5),
    (0x10D0, 0x10FF), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2010, 0x2027), (0x2030, 0x205E),
    (0x2074, 0x208E), (0x20A0, 0x20BF), (0x2100, 0x214F), (0x2150, 0x2189), (0x2190, 0x23FF),
    (0x2460, 0x24FF), (0x2500, 0x27BF), (0x3000, 0x303F), (0x3041, 0x3096), (0x30A0, 0x30FF),
    (0x3131, 0x318E), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0xFF01, 0xFF5E), (0xFF61, 0xFF9F),
    (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6C5), (0x10330, 0x1034A), (0x10400, 0x1044F),
    (0x1D400, 0x1D454), (0x1D7CE, 0x1D7FF), (0x20000, 0x2A6D6),
]
ASCII_SOUP = "abcdelmorstvSTDMLRE'\"  .,!?-0123456789\t\n"
SEPARATORS = ["", " ", "  ", "\n", "\t", " \n ", ", ", "'"]


def read_tsv_texts(path: Path) -> list:
    """The reference_text column of a manifest-style TSV file."""
    with open(path, encoding="utf-8", newline="") as f:
        return [row["reference_text"] for row in csv.DictReader(f, delimiter="\t")]


def fixed_texts() -> list:
    """Hand-written texts: sentences, emoji, marks, numbers, whitespace, contractions, punctuation."""
    texts = list(SENTENCES.values()) + EMOJI + COMBINING + NUMBERS + WHITESPACE + CONTRACTIONS
    texts += PUNCTUATION + MIXED
    texts += [a + b + c for a in ("", " ", "  ", "\n") for b in ("a", "1", ".", "'s") for c in ("", " ", "\n")]
    texts += [f"word{ws}word" for ws in WHITESPACE] + [f"{ws}x{ws}" for ws in WHITESPACE]
    around = (("  ", ""), ("x  ", "  x"), ("", "  x"), (". ", "1"), ("\n\n", "x"), ("x\n\n", ""))
    texts += [f"{a}{ws}{b}" for ws in WHITESPACE for a, b in around]  # runs and the (?!\S) rule
    texts += [" ".join(SENTENCES.values()), "".join(SENTENCES.values()), "", "a" * 300, " " * 50,
              "ab" * 120, "!" * 64, "\n" * 20, "😀" * 40]
    return texts


def with_spaces(texts: list) -> list:
    """Leading/trailing space variants (prompts are encoded with one leading space)."""
    out = []
    for t in texts:
        out += [" " + t, t + " ", "  " + t.strip() + "  "]
    return out


def random_texts(rng: random.Random, atoms: list) -> list:
    """Seeded random strings: atom soups, code-point soups, ASCII soups, combining-mark soups."""
    out = []
    for _ in range(700):
        parts = [rng.choice(atoms) for _ in range(rng.randint(1, 12))]
        out.append("".join(p + rng.choice(SEPARATORS) for p in parts))
    weights = [hi - lo + 1 for lo, hi in RANDOM_RANGES]
    for _ in range(600):
        chars = []
        for _ in range(rng.randint(1, 24)):
            lo, hi = rng.choices(RANDOM_RANGES, weights=[w ** 0.5 for w in weights])[0]
            chars.append(chr(rng.randint(lo, hi)))
            if rng.random() < 0.15:
                chars.append(rng.choice(" \n\t"))
        out.append("".join(chars))
    for _ in range(400):
        out.append("".join(rng.choice(ASCII_SOUP) for _ in range(rng.randint(1, 40))))
    bases = "aeiouxyzAEIOUαβγабв가나다あいう"
    for _ in range(200):
        chars = []
        for _ in range(rng.randint(1, 10)):
            chars.append(rng.choice(bases))
            chars += [chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(0, 3))]
            chars.append(rng.choice(["", "", " ", "\u200d", "\u200c", "\ufe0f", "\U0001F3FD", "1", "'s"]))
        out.append("".join(chars))
    return out


def corpus() -> list:
    """All corpus texts, deduplicated, in a fixed order."""
    references = read_tsv_texts(AUDIO_MANIFEST) + read_tsv_texts(REFERENCE_TEXTS)
    fixed = fixed_texts()
    atoms = [w for t in fixed + references for w in t.split(" ") if w] + EMOJI + WHITESPACE
    rng = random.Random(SEED)
    texts = references + [t.lower() for t in references] + with_spaces(references + fixed) + fixed
    texts += random_texts(rng, atoms)
    seen, out = set(), []
    for t in texts:
        if t not in seen and not SPECIAL_SPELLING.search(t):
            seen.add(t)
            out.append(t)
    return out


def id_sequences(eot: int, timestamp_begin: int, n_vocab: int, count: int = 400) -> list:
    """Seeded token-id lists for decode tests: text ids (often cutting UTF-8 apart), specials, timestamps.

    Every list has at least two ids (PaddleX's decode rejects [] and fails on a lone timestamp).
    """
    rng = random.Random(SEED + eot)
    out = []
    for k in range(count):
        n = rng.randint(2, 24)
        if k % 4 == 0:
            ids = [rng.randrange(eot) for _ in range(n)]
        elif k % 4 == 1:
            ids = [rng.randrange(128, 256) for _ in range(n)]  # stray UTF-8 bytes
        elif k % 4 == 2:
            ids = [rng.randrange(eot, timestamp_begin) if rng.random() < 0.3 else rng.randrange(eot)
                   for _ in range(n)]
        else:
            ids = [rng.randrange(timestamp_begin, n_vocab) if rng.random() < 0.3 else rng.randrange(eot)
                   for _ in range(n)]
        out.append(ids)
    return out


def corpus_sha256(texts: list) -> str:
    """A fingerprint of the corpus (the golden file records the one it was made from)."""
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest()
