"""Federated averaging across sites (003 §5.3): Flower's simulation engine on Ray, no image leaves its site.

:func:`~aimd.models.federated.flower.federate` runs FedAvg; :mod:`~aimd.models.federated.site` is what each
site's client does with its own data; :class:`~aimd.models.federated.guard.SiteFileGuard` proves the
server process opened none of the sites' files.
"""

from __future__ import annotations

from aimd.models.federated.guard import SiteDataAccessError, SiteFileGuard

__all__ = ["SiteDataAccessError", "SiteFileGuard"]
