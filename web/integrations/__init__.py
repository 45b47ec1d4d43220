"""OAuth redirect targets under ``/integrations/`` (Zoom, Google)."""
