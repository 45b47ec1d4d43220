"""The offline meeting sandbox: clearly labelled fake Zoom links, so the demo runs with no network.

``hold`` lets tests keep meetings pending (to prove sends wait for the link); ``fail`` makes
creation fail for good.
"""

from __future__ import annotations

import hashlib

from automations.errors import PermanentProviderError, RetryableProviderError
from providers.base import MeetingInfo, MeetingRequest

SANDBOX_URL = "https://sandbox.punctual.invalid/zoom/j/"


class SandboxMeetings:
    name = "sandbox"

    def __init__(self, *, hold: bool = False, fail: bool = False) -> None:
        self.hold = hold
        self.fail = fail
        self.created: list[MeetingRequest] = []
        self.deleted: list[str] = []

    def create(self, request: MeetingRequest) -> MeetingInfo:
        if self.fail:
            raise PermanentProviderError("sandbox meeting provider told to fail")
        if self.hold:
            raise RetryableProviderError("sandbox meeting provider told to hold")
        self.created.append(request)
        digest = hashlib.sha256(f"{request.host_user_id}|{request.start_at.isoformat()}|{len(self.created)}".encode())
        meeting_id = str(int(digest.hexdigest()[:10], 16))[:11]
        return MeetingInfo(meeting_id, f"{SANDBOX_URL}{meeting_id}?sandbox=1")

    def update(self, host_user_id: str, external_id: str, request: MeetingRequest) -> None:
        return None

    def ensure(self, host_user_id: str, external_id: str, request: MeetingRequest) -> MeetingInfo:
        """Sandbox meetings never disappear: the same id and link."""
        return MeetingInfo(external_id, f"{SANDBOX_URL}{external_id}?sandbox=1")

    def delete(self, host_user_id: str, external_id: str) -> None:
        self.deleted.append(external_id)
