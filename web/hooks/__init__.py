"""Provider webhooks under ``/hooks/`` (Zoom, Twilio, Google): each module has a blueprint ``bp``."""
