"""What several test files share: the bundled JFK clip and its words, a comparison of transcripts by
words, and the segments of a sample result."""

JFK = "golden/audio/en_jfk.wav"
JFK_WORDS = "and so my fellow americans ask not what your country can do for you"


def words(text: str) -> str:
    """Lower-case words only, so lossy variants compare by what was said."""
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def segment(i, seek, start, end, text):
    """A result segment as PaddleX writes one, with the given place and text."""
    return {"id": i, "seek": seek, "start": start, "end": end, "text": text, "tokens": [50364, 400 + i, 50414],
            "temperature": 0, "avg_logprob": -0.28680352241762225, "compression_ratio": 1.35,
            "no_speech_prob": 0.09207280725240707}
