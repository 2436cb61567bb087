"""The real app plus an endpoint that fails, to see what a client and the log get."""

from __future__ import annotations

from app import create_app

app = create_app()


@app.get("/api/boom")
def boom():
    raise RuntimeError("secret detail that must stay in the log")
