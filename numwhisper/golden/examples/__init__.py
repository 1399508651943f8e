"""Backends of other Whisper implementations for the parity command, as worked examples of the contract.

    python -m numwhisper.golden check --backend numwhisper.golden.examples.openai_whisper_backend:backend
    python -m numwhisper.golden check --backend numwhisper.golden.examples.ct2_backend:backend

Each needs its implementation installed (``pip install 'numwhisper[openai-whisper]'`` or
``'numwhisper[ctranslate2]'``); README "Conformance" gives their measured tables.
"""
