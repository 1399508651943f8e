"""The HTTP service: PaddleX serving's API for this pipeline, plus OpenAI's transcription API.

``cli`` is the command (``python -m numwhisper serve``), ``config`` its settings, ``app`` the ASGI
app (routes, admission, body bounds), ``sources`` what a request's audio names, ``schema`` the
request and response bodies. Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart).
"""
