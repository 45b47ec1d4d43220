"""Twilio Voice: the "Call" and "Voicemail drop" actions (contract ``EXTERNAL_APIS.md`` §3).

- **Call**: Twilio rings the assigned user; when they pick up they hear a short *whisper* (who and why), then
  ``<Dial>`` connects them to the contact with our Twilio number as caller ID.
- **Voicemail drop**: Twilio rings the contact with answering-machine detection (``MachineDetection=
  DetectMessageEnd``, §3.3) and plays a recorded audio URL once the greeting has finished. Three ways:
  ``twiml_url`` (synchronous AMD; the app's endpoint answers with :func:`voicemail_twiml` for the
  ``AnsweredBy`` it receives), ``amd_callback`` (``AsyncAmd=true``; the app's AMD callback calls
  :meth:`TwilioVoiceCaller.play_voicemail` or :meth:`TwilioVoiceCaller.hang_up`), or neither (inline TwiML
  that plays the recording after detection finishes — to humans too, since inline TwiML cannot branch).

Requests go through the official client and the base-URL seam of ``providers.twilio_common`` (§2.8); errors
map exactly as for SMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from automations.errors import PermanentProviderError
from providers.base import SendResult
from providers.twilio_common import (
    TwilioSender,
    map_call_status,
)

MAX_INLINE_TWIML = 4000  # Twilio's limit for the Twiml parameter (§3.1)
CALL_PROGRESS_EVENTS = ("initiated", "ringing", "answered", "completed")


@dataclass(frozen=True)
class OutgoingCall:
    """Ring ``user_phone`` (the assigned user), whisper to them, then connect them to ``contact_phone``."""

    message_id: str
    user_phone: str
    contact_phone: str
    whisper: str
    from_number: str | None = None
    status_callback: str | None = None
    ring_timeout: int = 30  # seconds to ring each leg


@dataclass(frozen=True)
class OutgoingVoicemail:
    """Leave the recording at ``audio_url`` on ``to``'s voicemail."""

    message_id: str
    to: str
    audio_url: str
    from_number: str | None = None
    status_callback: str | None = None
    twiml_url: str | None = None  # synchronous AMD: the app's TwiML endpoint (see voicemail_twiml)
    amd_callback: str | None = None  # asynchronous AMD: the app's AsyncAmdStatusCallback endpoint


def whisper_and_connect_twiml(
    whisper: str, contact_phone: str, caller_id: str, *, ring_timeout: int = 30, voice: str = "alice"
) -> str:
    """TwiML for the user's leg of a Call action: say the whisper, then bridge to the contact."""
    response = VoiceResponse()
    response.say(whisper, voice=voice)
    # answerOnBridge keeps the user hearing ringback (not silence) until the contact answers.
    dial = response.dial(caller_id=caller_id, timeout=ring_timeout, answer_on_bridge=True)
    dial.number(contact_phone)
    # <Dial> falls through when the contact does not answer; tell the user rather than hanging up mutely.
    response.say("The contact did not answer. Goodbye.", voice=voice)
    return str(response)


def voicemail_twiml(
    answered_by: str | None, audio_url: str, *, human_message: str | None = None, voice: str = "alice"
) -> str:
    """What to play once AMD has decided (§3.3 table): the recording for machines (and ``unknown``),
    ``human_message`` (or the recording) for a person, nothing for a fax."""
    response = VoiceResponse()
    kind = (answered_by or "unknown").lower()
    if kind == "fax":
        response.hangup()
    elif kind == "human" and human_message:
        response.say(human_message, voice=voice)
        response.hangup()
    else:
        response.play(audio_url)
        response.hangup()
    return str(response)


def _check_twiml(twiml: str) -> str:
    if len(twiml) > MAX_INLINE_TWIML:
        raise PermanentProviderError(
            f"inline TwiML is {len(twiml)} characters; Twilio allows {MAX_INLINE_TWIML}",
            provider_code="twiml",
        )
    return twiml


class TwilioVoiceCaller(TwilioSender):
    """Places reminder calls and voicemail drops through Twilio Voice.

    ``from_number`` is the default caller (a Twilio number or verified caller ID); ``status_callback`` the
    default URL for call progress events (initiated, ringing, answered, completed; §3.4).
    """

    def __init__(self, account_sid: str, auth_token: str, *, voice: str = "alice",
                 machine_detection_timeout: int = 30, **kw: Any) -> None:
        """``kw``: the :class:`TwilioSender` settings (from_number, status_callback, base_url, ...)."""
        super().__init__(account_sid, auth_token, **kw)
        self.voice = voice
        self.machine_detection_timeout = machine_detection_timeout

    def call(self, call: OutgoingCall) -> SendResult:
        """Ring the user with a whisper, then connect them to the contact."""
        caller = self._from(call.from_number)
        if not call.user_phone or not call.contact_phone:
            raise PermanentProviderError("a call needs both the user's and the contact's number")
        twiml = _check_twiml(
            whisper_and_connect_twiml(
                call.whisper, call.contact_phone, caller, ring_timeout=call.ring_timeout, voice=self.voice
            )
        )
        kwargs = {"to": call.user_phone, "from_": caller, "twiml": twiml, "timeout": call.ring_timeout}
        return self._create(kwargs, call.status_callback, mode="call")

    def voicemail_drop(self, vm: OutgoingVoicemail) -> SendResult:
        """Call ``vm.to`` with answering-machine detection and leave ``vm.audio_url`` after the beep."""
        caller = self._from(vm.from_number)
        if not vm.to:
            raise PermanentProviderError("voicemail drop has no recipient number")
        if not vm.audio_url.startswith(("https://", "http://")):
            raise PermanentProviderError("voicemail audio must be an http(s) URL")
        kwargs: dict = {
            "to": vm.to,
            "from_": caller,
            # DetectMessageEnd waits for the greeting/beep to finish before answering (§3.1, §3.3).
            "machine_detection": "DetectMessageEnd",
            "machine_detection_timeout": self.machine_detection_timeout,
        }
        if vm.twiml_url:
            mode = "amd_url"
            kwargs["url"] = vm.twiml_url
        elif vm.amd_callback:
            mode = "async_amd"
            kwargs["async_amd"] = "true"
            kwargs["async_amd_status_callback"] = vm.amd_callback
            # The call connects at once with async AMD: keep it open silently until the AMD callback
            # redirects it (play_voicemail / hang_up); if nothing comes, it ends on its own.
            hold = VoiceResponse()
            hold.pause(length=self.machine_detection_timeout + 30)
            kwargs["twiml"] = _check_twiml(str(hold))
        else:
            mode = "inline"
            kwargs["twiml"] = _check_twiml(
                voicemail_twiml("machine_end_beep", vm.audio_url, voice=self.voice)
            )
        return self._create(kwargs, vm.status_callback, mode=mode)

    def play_voicemail(self, call_sid: str, audio_url: str, answered_by: str | None = None) -> None:
        """Async AMD follow-up: redirect the live call to play the recording (§3.3)."""
        twiml = _check_twiml(voicemail_twiml(answered_by or "machine_end_beep", audio_url, voice=self.voice))
        self._update(call_sid, twiml=twiml)

    def hang_up(self, call_sid: str) -> None:
        """End a live call (e.g. the async AMD callback said ``human`` or ``fax``)."""
        self._update(call_sid, status="completed")

    def _from(self, override: str | None) -> str:
        caller = override or self.from_number
        if not caller:
            raise PermanentProviderError("no From number configured for calls", provider_code="21212")
        return caller

    def _create(self, kwargs: dict, status_callback: str | None, *, mode: str) -> SendResult:
        callback = status_callback or self.status_callback
        if callback:
            kwargs["status_callback"] = callback
            kwargs["status_callback_event"] = list(CALL_PROGRESS_EVENTS)
        created = self._twilio(self.client.calls.create, **kwargs)
        twilio_status = getattr(created, "status", None)
        return SendResult(
            provider=self.name,
            provider_id=created.sid,
            status=map_call_status(str(twilio_status) if twilio_status is not None else None),
            detail={"twilio_status": str(twilio_status) if twilio_status else None, "mode": mode},
        )

    def _update(self, call_sid: str, **kwargs: str) -> None:
        self._twilio(self.client.calls(call_sid).update, **kwargs)
