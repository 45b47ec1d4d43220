"""Sign in and sign out, with login throttling.

Throttling: after ``MAX_FAILURES`` failed attempts for one email, or from one address, within a
``WINDOW`` (a fixed window), sign-in is refused (429) until the window ends. The failures are counted in
the database (``automations.store.ratelimit``, the API's limiter), so every process and host shares the
count: a second server does not grant five fresh guesses.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import flash, g, redirect, render_template, request, session, url_for

from automations.booking import accounts
from automations.store import ratelimit
from automations.store.db import transaction
from web.pages.base import _factory, bp, clock_now

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
_WINDOW_SECONDS = int(WINDOW.total_seconds())


def _keys(email: str) -> list[str]:
    return [f"login:email:{email.strip().lower()[:300]}", f"login:ip:{request.remote_addr}"]


def allow_attempt(keys: list[str], now: datetime) -> timedelta | None:
    """None when an attempt may be made; else how long until one may."""
    with transaction(_factory()) as s:
        for key in keys:
            count = ratelimit.peek(s, key, now=now, window_seconds=_WINDOW_SECONDS)
            if count.hits >= MAX_FAILURES:
                return timedelta(seconds=count.retry_after)
    return None


def record_failure(keys: list[str], now: datetime) -> None:
    with transaction(_factory()) as s:
        for key in keys:
            ratelimit.hit(s, key, now=now, window_seconds=_WINDOW_SECONDS)


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
