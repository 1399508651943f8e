"""The golden parity suite: outputs of PaddleX's own Whisper, and the checks any backend must pass.

``files`` reads the golden files (``golden/`` at the top of the repository; ``golden/README.md``
describes them) and compares arrays and results; ``tolerances`` holds every parity tolerance;
``check`` runs a backend through the stages; ``cli`` is the command
(``python -m numwhisper.golden check --backend MODULE:FACTORY``).
"""
