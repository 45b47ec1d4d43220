"""The JSON API under ``/api/v1``: one module per resource (each defines its own blueprint), shared
request helpers in ``common``, response schemas in ``responses``; ``blueprint`` nests them all in
the authenticated parent blueprint. Nothing is imported here, so a resource never imports its package.
"""
