"""The platform's HTTP API (FastAPI): JSON under ``/api/v1``, OpenAPI at ``/openapi.json``,
``/v2/health/live|ready`` and Prometheus ``/metrics``.

Routes are thin: they check the caller through one dependency per :class:`~aimd.platform.rbac.Permission`
(``need``), call a service function, commit, and answer — a save the client is told succeeded is in the
database. Errors come back as ``{"error", "message", "where", "hint"}`` with a 4xx status. The app is
built in :mod:`.app`; the routes live in ``routes_*`` modules by area.
"""

from aimd.platform.api.app import create_app

__all__ = ["create_app"]
