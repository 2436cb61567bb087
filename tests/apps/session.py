"""The real app plus an endpoint that sets a session cookie, to read its attributes live."""

from __future__ import annotations

from flask import jsonify, session

from app import create_app

app = create_app()


@app.post("/api/login")
def login():
    session["user"] = "someone"
    return jsonify(ok=True)
