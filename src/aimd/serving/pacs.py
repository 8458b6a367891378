"""DICOMweb client of the device (003 §3.3.3): QIDO-RS to find, WADO-RS to retrieve, STOW-RS to store.

Built on ``dicomweb-client`` with a ``requests`` session (HTTP basic auth when the PACS needs it,
a timeout on every call). Every failure — unreachable PACS, refused credentials, unknown study or
series, a store the PACS rejects — is a :class:`~aimd.serving.errors.PacsError` or
:class:`~aimd.serving.errors.NotFoundError` naming the PACS URL and the fix.

Results are stored in one STOW-RS request (SEG and SR together), so the PACS either gets both or,
when the request fails, neither is reported as stored.

A PACS that is slow or briefly down is retried: a call that fails for a transient reason — no
connection, a timeout, HTTP 429 or 5xx — is repeated up to ``retries`` more times after
``backoff``, ``2 × backoff``, ``4 × backoff``… seconds (at most ``backoff_max``); refused
credentials, unknown series and rejected instances are not. A repeated STOW-RS is harmless: the
instances keep their SOP instance UIDs, so the PACS holds each once.

Example
-------
>>> pacs = Pacs("http://127.0.0.1:9/dicom-web", timeout=0.5, retries=1, backoff=0.01)
>>> try:
...     pacs.retrieve_series("1.2.3", "1.2.3.4")
... except Exception as err:
...     print(type(err).__name__)
PacsError
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pydicom
import requests

from aimd.serving.errors import NotFoundError, PacsError

T = TypeVar("T")


class Pacs:
    """A DICOMweb PACS at ``url`` (the DICOMweb root, e.g. ``http://host:8042/dicom-web``)."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        from dicomweb_client.api import DICOMwebClient

        self.url = url.rstrip("/")
        session = requests.Session()
        if user:
            session.auth = (user, password or "")
        self.timeout = timeout
        session.request = _with_timeout(session.request, timeout)  # type: ignore[method-assign]
        self._session = session
        self._client = DICOMwebClient(url=self.url, session=session, timeout=timeout)
        self._client.set_http_retry_params(retry=False)  # retried here, with backoff, transient faults only
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.backoff_max = max(self.backoff, float(backoff_max))
        self.retried = 0  # calls repeated since start (a transient fault each)

    def delays(self) -> list[float]:
        """Seconds waited before each repeat of a failing call.

        Example
        -------
        >>> Pacs("http://pacs/dicom-web", retries=5, backoff=0.5, backoff_max=4).delays()
        [0.5, 1.0, 2.0, 4.0, 4.0]
        """
        return [min(self.backoff_max, self.backoff * 2**k) for k in range(self.retries)]

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        waits = self.delays()
        for attempt in range(len(waits) + 1):
            try:
                return self._once(what, fn)
            except PacsError as err:
                if not err.transient or attempt == len(waits):
                    if not attempt:
                        raise
                    raise PacsError(
                        f"{err.message}; tried {attempt + 1} times over {sum(waits[:attempt]):g} s",
                        where=err.where,
                        hint=err.hint,
                        transient=err.transient,
                    ) from err
                self.retried += 1
                time.sleep(waits[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except requests.HTTPError as err:
            status = err.response.status_code if err.response is not None else None
            if status in (401, 403):
                raise PacsError(
                    f"{what}: the PACS refused the credentials (HTTP {status})",
                    where=self.url,
                    hint="set AIMD_PACS_USER / AIMD_PACS_PASSWORD to an account of the PACS",
                ) from err
            if status == 404:
                raise NotFoundError(
                    f"{what}: not found in the PACS",
                    where=self.url,
                    hint="check study_uid and series_uid with the PACS viewer",
                ) from err
            raise PacsError(
                f"{what}: the PACS answered HTTP {status}",
                where=self.url,
                hint="check the PACS log",
                transient=status is None or status == 429 or status >= 500,
            ) from err
        except requests.RequestException as err:
            raise PacsError(
                f"{what}: PACS unreachable ({type(err).__name__})",
                where=self.url,
                hint="check --pacs URL and that the PACS is running",
                transient=True,
            ) from err

    def find_series(self, study_uid: str, series_uid: str) -> dict[str, Any]:
        """QIDO-RS: the series' attributes; :class:`NotFoundError` when the PACS does not hold it."""
        found = self._call(
            "QIDO-RS series search",
            lambda: self._client.search_for_series(
                study_instance_uid=study_uid, search_filters={"SeriesInstanceUID": series_uid}
            ),
        )
        if not found:
            raise NotFoundError(
                f"series {series_uid} of study {study_uid} is not in the PACS",
                where="series_uid",
                hint="check study_uid and series_uid with the PACS viewer",
            )
        return dict(found[0])

    def retrieve_series(self, study_uid: str, series_uid: str) -> list[pydicom.Dataset]:
        """WADO-RS: every instance of the series."""
        datasets = self._call(
            "WADO-RS retrieve",
            lambda: self._client.retrieve_series(study_instance_uid=study_uid, series_instance_uid=series_uid),
        )
        if not datasets:
            raise NotFoundError(
                f"series {series_uid} of study {study_uid} has no instances in the PACS",
                where="series_uid",
                hint="check the series in the PACS viewer",
            )
        return list(datasets)

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> pydicom.Dataset:
        """WADO-RS: one instance."""
        return self._call(
            "WADO-RS retrieve",
            lambda: self._client.retrieve_instance(
                study_instance_uid=study_uid, series_instance_uid=series_uid, sop_instance_uid=sop_uid
            ),
        )

    def store(self, datasets: list[pydicom.Dataset]) -> list[str]:
        """STOW-RS all ``datasets`` in one request; the SOP instance UIDs stored.

        Raises :class:`PacsError` when the PACS reports any instance as failed.
        """
        if not datasets:
            return []
        answer = self._call("STOW-RS store", lambda: self._client.store_instances(datasets=datasets))
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            raise PacsError(
                f"STOW-RS: the PACS rejected {len(failed)} of {len(datasets)} instance(s)",
                where=self.url,
                hint="check the PACS log for the reason",
            )
        return [str(ds.SOPInstanceUID) for ds in datasets]

    def probe(self, timeout: float = 2.0) -> None:
        """One QIDO-RS study search (``limit=1``) within ``timeout`` seconds and never repeated: raises
        :class:`PacsError` (or :class:`NotFoundError` for a wrong DICOMweb root) when the PACS cannot be used."""

        def search() -> None:
            accept = {"Accept": "application/dicom+json"}
            limit = min(timeout, self.timeout)
            self._session.get(
                f"{self.url}/studies", params={"limit": 1}, headers=accept, timeout=limit
            ).raise_for_status()

        self._once("QIDO-RS readiness probe", search)

    def ping(self) -> bool:
        """True when the PACS answers a QIDO-RS study search."""
        try:
            self._call("QIDO-RS ping", lambda: self._client.search_for_studies(limit=1))
        except (PacsError, NotFoundError):
            return False
        return True


def _with_timeout(request: Callable[..., Any], timeout: float) -> Callable[..., Any]:
    def call(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return request(method, url, **kwargs)

    return call


__all__ = ["Pacs"]
