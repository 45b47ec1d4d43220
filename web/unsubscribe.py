"""``/unsubscribe/<token>``: the ``List-Unsubscribe`` target of contact emails (RFC 2369 / RFC 8058).

``GET`` shows a one-button page (a link preview or a scanner must not unsubscribe anyone by fetching it);
``POST`` — the button, or a mail client's one-click ``List-Unsubscribe=One-Click`` — turns on the contact's
email do-not-disturb. Idempotent; an unknown or altered token is a 404.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, current_app, request

from automations.booking import domain_events
from automations.errors import NotFound
from automations.outbox import unsubscribe
from automations.store.db import transaction
from automations.store.models import Contact, Location
from automations.store.states import EventKind

bp = Blueprint("unsubscribe", __name__)
MAX_BODY = 4096

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _contact(session, token: str) -> Contact:
    state = current_app.extensions["punctual"]
    contact_id = unsubscribe.contact_id(state.settings.secret_key, token)
    contact = session.get(Contact, contact_id) if contact_id else None
    if contact is None:
        raise NotFound("unknown unsubscribe link")
    return contact


@bp.route(f"{unsubscribe.PATH}/<token>", methods=["GET", "POST"])
def unsubscribe_view(token: str) -> Response:
    request.max_content_length = MAX_BODY
    state = current_app.extensions["punctual"]
    with transaction(state.factory) as session:
        contact = _contact(session, token)
        location = session.get(Location, contact.location_id)
        sender = escape(location.name if location else "this sender")
        if request.method == "GET":
            html = _PAGE.format(title="Unsubscribe", text=f"Stop receiving emails from {sender}?",
                                form='<form method="post"><button type="submit">Unsubscribe</button></form>')
            return Response(html, mimetype="text/html")
        if not contact.email_dnd:
            now = state.clock.now()
            contact.email_dnd = True
            contact.updated_at = now
            domain_events.emit(session, location_id=contact.location_id, kind=EventKind.CONTACT_UPDATED, now=now,
                               contact_id=contact.id, changed=["email_dnd"])
    html = _PAGE.format(title="Unsubscribed", text=f"You will no longer receive emails from {sender}.", form="")
    return Response(html, mimetype="text/html")
