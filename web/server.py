"""Serving the app for real: waitress, a production WSGI server (pure Python, no build step, runs
anywhere the app does, a thread pool in front of a non-blocking acceptor; well kept by the Pylons
project). Werkzeug's development server is for development: it announces its version and is not made
for exposure. The ``Server`` header names no software version."""

from __future__ import annotations

from flask import Flask
from waitress import create_server

IDENT = "Punctual"


def make_server(app: Flask, *, host: str, port: int, threads: int = 8):
    """A waitress server bound to ``host:port`` (port 0: any free port); ``.run()`` serves."""
    return create_server(app, host=host, port=port, threads=threads, ident=IDENT)


def serve(app: Flask, *, host: str, port: int, threads: int = 8) -> None:
    make_server(app, host=host, port=port, threads=threads).run()
