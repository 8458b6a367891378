"""Running independent jobs as Ray tasks: on this machine by default, on a cluster by address.

:func:`ray_map` calls one function on every argument tuple as a Ray task and returns the results in
the order of the arguments, so how the work was split never shows in the output. A worker process
that dies mid-task is restarted by Ray and the task run again (``max_retries``); jobs must therefore
be pure (paths in, values out).

``address`` ``None`` starts a local Ray instance with ``num_cpus`` CPUs (default: every core) and
stops it afterwards; an address (``"ray://head:10001"``, ``"head:6379"`` or ``"auto"``) joins an
existing cluster. When Ray is already initialised in this process, that instance is used as it is.

Example
-------
>>> ray_label(None), ray_label("10.0.0.5:6379")
('ray (local)', 'ray (10.0.0.5:6379)')
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aimd.core.errors import InvalidInputError

LOCAL = "local"
DEFAULT_RETRIES = 3


def ray_label(address: str | None) -> str:
    """How a run's execution is described in reports: ``ray (local)`` or ``ray (ADDRESS)``."""
    return f"ray ({address or LOCAL})"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - ray is a declared dependency of the ray extra
        raise InvalidInputError(
            "Ray is not installed", where="--ray", hint="pip install 'aimd[ray]' (or drop --ray to run in this process)"
        ) from err
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, initialised for the ``with`` block: local (``None``/``"local"``, ``num_cpus`` CPUs) or joined by address.

    When Ray is already initialised in this process that instance is used and left running; one
    started here is shut down on leaving the block.
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        if address in (None, LOCAL):
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise InvalidInputError(
            f"cannot reach the Ray cluster: {err}",
            where=f"--ray {address}",
            hint="start it with `ray start --head` or omit the address for a local run",
        ) from err
    try:
        yield ray
    finally:
        ray.shutdown()


def ray_imap(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    max_retries: int = DEFAULT_RETRIES,
) -> Iterator[Any]:
    """Yield ``fn(*job)`` for every job, computed as Ray tasks (one per job), in job order.

    ``address`` and ``num_cpus`` as in :func:`ray_session`. Each task is retried up to
    ``max_retries`` times when its worker process dies. Every task is submitted at once; each result
    is fetched from the object store only when the caller asks for it and dropped there after, so
    large results (masks) need not all be held at the same time.
    """
    with ray_session(address, num_cpus=num_cpus) as ray:
        remote = ray.remote(max_retries=max_retries, num_cpus=1)(fn)
        refs: list[Any] = [remote.remote(*job) for job in jobs]
        for i in range(len(refs)):  # in submission order: the output never depends on which task finished first
            ref, refs[i] = refs[i], None
            yield ray.get(ref)
            del ref


def ray_map(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    max_retries: int = DEFAULT_RETRIES,
    progress: Callable[[], object] | None = None,
) -> list[Any]:
    """``[fn(*job) for job in jobs]`` computed as Ray tasks (one per job), results in job order.

    See :func:`ray_imap` for ``address``, ``num_cpus`` and ``max_retries``; ``progress`` is called
    after each result.
    """
    results: list[Any] = []
    for result in ray_imap(fn, jobs, address=address, num_cpus=num_cpus, max_retries=max_retries):
        results.append(result)
        if progress is not None:
            progress()
    return results


__all__ = ["DEFAULT_RETRIES", "LOCAL", "ray_imap", "ray_label", "ray_map", "ray_session"]
