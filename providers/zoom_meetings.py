"""The HTTP side of Zoom built from settings: the OAuth redirect target and a :class:`ZoomClient`.

The database side (stored tokens, refresh leases, the daily budget) is ``automations.zoom.provider``.
"""

from __future__ import annotations

import httpx

from automations.clock import Clock
from automations.settings import Settings
from providers.zoom_client import ZoomClient

CALLBACK_PATH = "/integrations/zoom/callback"


def redirect_uri(settings: Settings) -> str:
    """The OAuth redirect target registered with the Zoom app: ``PUNCTUAL_PUBLIC_URL`` + the callback path."""
    return f"{settings.public_url.rstrip('/')}{CALLBACK_PATH}"


def zoom_configured(settings: Settings) -> bool:
    return bool(settings.zoom_client_id and settings.zoom_client_secret)


def make_client(settings: Settings, *, clock: Clock | None = None, http: httpx.Client | None = None) -> ZoomClient:
    return ZoomClient(
        client_id=settings.zoom_client_id or "", client_secret=settings.zoom_client_secret or "",
        redirect_uri=redirect_uri(settings), http=http, api_base=settings.zoom_api_base,
        oauth_base=settings.zoom_oauth_base, clock=clock,
    )
