"""Punctual's web layer: the Flask app factory (``web.app.create_app``), the JSON API under
``/api/v1`` (``web.api``), and its OpenAPI document (``web.openapi``)."""
