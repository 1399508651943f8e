"""Hostile audio made from the bundled JFK clip: header fields set to absurd values, truncations,
seeded byte flips, and samples too large for the log-mel.

``named_cases`` are the files an adversarial user tried first (each one once broke a promise);
``fuzz_cases`` is the seeded corpus the fuzz test runs, a few hundred mutations over every format.
Both are (name, bytes) pairs; nothing here touches the disk.
"""

from __future__ import annotations

import io
import random
import struct
from typing import Dict, Iterator, List, Tuple

import numpy as np
import soundfile

from samples import JFK

SECONDS = 3  # the clip is cut to this many seconds: enough to decode to words, quick to transcribe
FORMATS = {  # name -> (soundfile format, subtype, suffix)
    "wav": ("WAV", "PCM_16", ".wav"),
    "float-wav": ("WAV", "FLOAT", ".wav"),
    "flac": ("FLAC", "PCM_16", ".flac"),
    "ogg": ("OGG", "VORBIS", ".ogg"),
    "mp3": ("MP3", "MPEG_LAYER_III", ".mp3"),
}
TRUNCATIONS = 6     # cut points per format, spread over the file (plus 1 byte and n - 1 bytes)
FLIPS = {"wav": 4, "float-wav": 4, "flac": 24, "ogg": 16, "mp3": 12}  # seeded one-byte corruptions per format
# (a flip in PCM data changes one sample; in a compressed stream it can derail the decoder)
HEADER_BYTES = 64   # where header mutations of formats without a field table land


def clip(repo) -> np.ndarray:
    """The first SECONDS of the JFK clip, float32 [48000] at 16 kHz."""
    samples, rate = soundfile.read(repo / JFK, dtype="float32")
    return samples[:SECONDS * rate]


def encoded(samples: np.ndarray, fmt: str, rate: int = 16000) -> bytes:
    """``samples`` [N] written in format ``fmt`` (a FORMATS key)."""
    container, subtype, _ = FORMATS[fmt]
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=container, subtype=subtype)
    return out.getvalue()


def with_field(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with the little-endian struct field ``fmt`` at ``offset`` set to ``value``."""
    out = bytearray(data)
    struct.pack_into("<" + fmt, out, offset, value)
    return bytes(out)


def wav_rate(data: bytes, rate: int) -> bytes:
    """A canonical wav with its sample rate (and byte rate, consistently) set to ``rate``."""
    fmt = data.index(b"fmt ") + 8
    channels, bits = struct.unpack_from("<H", data, fmt + 2)[0], struct.unpack_from("<H", data, fmt + 14)[0]
    data = with_field(data, fmt + 4, "I", rate)
    return with_field(data, fmt + 8, "I", rate * channels * bits // 8 & 0xFFFFFFFF)


def flac_total_samples(data: bytes, total: int) -> bytes:
    """A FLAC file whose STREAMINFO declares ``total`` samples (36 bits, at bytes 21..25)."""
    out = bytearray(data)
    packed = int.from_bytes(out[21:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (total & ((1 << 36) - 1))
    out[21:26] = packed.to_bytes(5, "big")
    return bytes(out)


def mp3_xing_frames(data: bytes, top_byte: int = 0xFF) -> bytes:
    """An mp3 whose Xing header's frame count has its top byte replaced (one flipped byte)."""
    frames = data.index(b"Xing") + 8
    out = bytearray(data)
    out[frames] = top_byte
    return bytes(out)


def named_cases(repo) -> Dict[str, bytes]:
    """The files that once broke "one line, the batch goes on": {file name: bytes}."""
    x = clip(repo)
    wav, flac, mp3 = encoded(x, "wav"), encoded(x, "flac"), encoded(x, "mp3")
    return {
        "xing-frames.mp3": mp3_xing_frames(mp3),                       # asked for 5.59 TiB
        "flac-2pow36.flac": flac_total_samples(flac, (1 << 36) - 1),    # asked for 256 GiB
        "rate-1hz.wav": wav_rate(wav, 1),                              # resampler asked for 10.5 GiB
        "rate-8hz.wav": wav_rate(wav, 8),
        "rate-4gi.wav": wav_rate(wav, 0xFFFFFFFF),
        "huge-1e20.wav": encoded(x / np.abs(x).max() * np.float32(1e20), "float-wav"),  # "!!!!" with exit 0
        "huge-3e38.wav": encoded(x / np.abs(x).max() * np.float32(3e38), "float-wav"),
        "short.mp3": mp3[:300],                                        # libsndfile's "possibly a pipe?"
        "wav-frames-max.wav": with_field(wav, wav.index(b"data") + 4, "I", 0xFFFFFFFF),
    }


# named_cases files every entry point refuses -> the cause its one line gives (the others decode)
REFUSED = {
    "xing-frames.mp3": "audio too long (its header declares",
    "flac-2pow36.flac": "audio too long (its header declares",
    "rate-1hz.wav": "sample rate 1 Hz is outside",
    "rate-8hz.wav": "sample rate 8 Hz is outside",
    "rate-4gi.wav": "damaged or malformed",
    "huge-1e20.wav": "too large for the log-mel",
    "huge-3e38.wav": "too large for the log-mel",
    "short.mp3": "too short or damaged to be read as audio",
}


def truncations(data: bytes) -> List[int]:
    """Cut lengths for one file: 1 byte, TRUNCATIONS points spread over it, and all but the last byte."""
    spread = [len(data) * k // (TRUNCATIONS + 1) for k in range(1, TRUNCATIONS + 1)]
    return sorted({1, *spread, len(data) - 1})


def header_mutations(fmt: str, data: bytes, rng: random.Random) -> Iterator[Tuple[str, bytes]]:
    """Header fields set to extremes: wav and flac by field, the others by bytes in the first HEADER_BYTES."""
    extremes = (0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)
    if fmt in ("wav", "float-wav"):
        fmt_at = data.index(b"fmt ") + 8
        fields = {"riff-size": (4, "I"), "channels": (fmt_at + 2, "H"), "rate": (fmt_at + 4, "I"),
                  "byte-rate": (fmt_at + 8, "I"), "block-align": (fmt_at + 12, "H"), "bits": (fmt_at + 14, "H"),
                  "data-size": (data.index(b"data") + 4, "I")}
        for field, (offset, code) in fields.items():
            for value in extremes:
                if code == "H" and value > 0xFFFF:
                    continue
                yield f"{field}={value:#x}", with_field(data, offset, code, value)
    elif fmt == "flac":
        for total in (0, 1, (1 << 36) - 1, 1 << 35):
            yield f"total-samples={total:#x}", flac_total_samples(data, total)
        for offset in (8, 10, 18, 19, 20):  # block sizes, sample rate and channels/bits bytes
            for value in (0x00, 0xFF):
                out = bytearray(data)
                out[offset] = value
                yield f"streaminfo[{offset}]={value:#x}", bytes(out)
    else:
        for _ in range(10):
            offset, value = rng.randrange(HEADER_BYTES), rng.choice((0x00, 0xFF, rng.randrange(256)))
            out = bytearray(data)
            out[offset] = value
            yield f"header[{offset}]={value:#x}", bytes(out)


def fuzz_cases(repo, seed: int = 21) -> Iterator[Tuple[str, bytes]]:
    """The seeded corpus: per format, header mutations, truncations and byte flips -> (name, bytes)."""
    rng = random.Random(seed)
    x = clip(repo)
    for fmt, (_, _, suffix) in FORMATS.items():
        data = encoded(x, fmt)
        for what, mutated in header_mutations(fmt, data, rng):
            yield f"{fmt}-{what}{suffix}", mutated
        for length in truncations(data):
            yield f"{fmt}-cut{length}{suffix}", data[:length]
        for _ in range(FLIPS[fmt]):
            offset, mask = rng.randrange(len(data)), rng.randrange(1, 256)
            out = bytearray(data)
            out[offset] ^= mask
            yield f"{fmt}-flip{offset}x{mask:02x}{suffix}", bytes(out)
