"""The golden parity suite: outputs of PaddleX's own Whisper, and the checks any backend must pass.

``files`` reads the golden files (``golden/`` of a checkout, ``$NUMWHISPER_GOLDEN``, or the installed
``numwhisper-golden`` wheel; ``golden/README.md`` describes them) and compares arrays and results;
``tolerances`` holds every parity tolerance; ``check`` runs a backend through the stages and
``contract`` probes the rules of the backend contract; ``cli`` is the command
(``python -m numwhisper.golden check --backend MODULE:FACTORY``); ``examples`` holds backends of
other Whisper implementations written over the contract.
"""
