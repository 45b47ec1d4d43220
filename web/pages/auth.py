"""Sign in and sign out, with login throttling.

Throttling: after ``MAX_FAILURES`` failed attempts for one email, or from one address, within
``WINDOW``, sign-in is refused (429) until the oldest failure ages out. The counter lives in
:func:`allow_attempt` / :func:`record_failure` — the role the shared DB-backed limiter
(``web/ratelimit.py``, being written for the API) will take over; until it lands this is per process.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from datetime import datetime, timedelta

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from automations.booking import accounts
from automations.store.db import transaction
from web.pages.base import _factory, bp, clock_now

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
_lock = threading.Lock()


def _failures() -> dict[str, deque[datetime]]:
    """This app's failed attempts by key (one store per app, so tests and apps never share one)."""
    return current_app.extensions.setdefault("punctual.login_failures", defaultdict(deque))


def _keys(email: str) -> list[str]:
    return [f"email:{email.strip().lower()[:320]}", f"ip:{request.remote_addr}"]


def allow_attempt(keys: list[str], now: datetime) -> timedelta | None:
    """None when an attempt may be made; else how long until one may."""
    failures = _failures()
    with _lock:
        for key in keys:
            q = failures[key]
            while q and q[0] <= now - WINDOW:
                q.popleft()
            if len(q) >= MAX_FAILURES:
                return q[0] + WINDOW - now
    return None


def record_failure(keys: list[str], now: datetime) -> None:
    failures = _failures()
    with _lock:
        for key in keys:
            failures[key].append(now)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after sign-in is a phishing tool.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.get("user") is not None and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    errors: dict[str, list[str]] = {}
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "")[:320]
        password = request.form.get("password", "")
        now = clock_now()
        wait = allow_attempt(_keys(email), now)
        if wait is not None:
            minutes = max(1, int(wait.total_seconds() // 60) + 1)
            errors["email"] = [f"Too many failed sign-ins. Try again in {minutes} minutes."]
            return render_template("login.html", errors=errors, email=email), 429
        if not email.strip():
            errors["email"] = ["Enter your email address"]
        if not password:
            errors["password"] = ["Enter your password"]
        if not errors:
            with transaction(_factory()) as s:
                user = accounts.authenticate(s, email, password)
                if user is not None:
                    session.clear()
                    session["user_id"] = user.id
                    session["pw"] = user.password_hash[-16:]
                    session.permanent = True
                    flash(f"Signed in as {user.email}.", "success")
                    return redirect(_safe_next(request.args.get("next")))
            record_failure(_keys(email), now)
            errors["email"] = ["Email or password is not right"]
        return render_template("login.html", errors=errors, email=email), 422
    return render_template("login.html", errors=errors, email=email)


@bp.post("/logout")
def logout():
    session.clear()
    flash("Signed out.", "success")
    return redirect(url_for("pages.login"))
