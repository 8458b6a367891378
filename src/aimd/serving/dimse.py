"""DIMSE entry point for modalities that push (003 §3.3.3): a pynetdicom storage SCP.

A modality sends a study by C-STORE to ``--dicom-port`` / ``--ae-title``. Instances are collected
per series; a series counts as complete when no instance has arrived for ``series_idle_seconds``.
It is then checked like an upload (missing slices, geometry), run through the service's model and —
when the service has a PACS — its SEG and SR are stored there. Every outcome is audited; a series
that fails (bad geometry, PACS down) is recorded with its error and nothing partial is stored.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom

from aimd.core.errors import AimdError
from aimd.serving.inputs import volume_from_datasets

if TYPE_CHECKING:
    from aimd.serving.service import InferenceService


class StorageSCP:
    """C-STORE receiver that runs inference when a series is complete."""

    def __init__(
        self,
        service: InferenceService,
        *,
        model: str,
        port: int,
        ae_title: str = "AIMD",
        host: str = "127.0.0.1",
        idle_seconds: float = 3.0,
    ) -> None:
        self.service = service
        self.model = model
        self.port = port
        self.ae_title = ae_title
        self.host = host
        self.idle = idle_seconds
        self._series: dict[str, list[pydicom.Dataset]] = defaultdict(list)
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.outcomes: list[dict[str, Any]] = []
        self._server: Any = None
        self._monitor: threading.Thread | None = None

    def start(self) -> None:
        """Listen for associations and watch for complete series."""
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        self._server = ae.start_server(
            (self.host, self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)]
        )
        self._monitor = threading.Thread(target=self._watch, name="aimd-dimse", daemon=True)
        self._monitor.start()

    def _on_store(self, event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        series = str(ds.get("SeriesInstanceUID", ""))
        if not series:
            return 0xA900  # dataset does not match SOP class: no series to file it under
        with self._lock:
            self._series[series].append(ds)
            self._last[series] = time.monotonic()
        return 0x0000

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._lock:
                ready = [s for s, t in self._last.items() if now - t >= self.idle]
                batches = [(s, self._series.pop(s)) for s in ready]
                for s in ready:
                    del self._last[s]
            for series, datasets in batches:
                self._run(series, datasets)

    def _run(self, series: str, datasets: list[pydicom.Dataset]) -> None:
        svc = self.service
        source = {"dimse": {"ae_title": self.ae_title, "series_uid": series, "instances": len(datasets)}}
        outcome: dict[str, Any] = {"series_uid": series, "instances": len(datasets)}
        try:
            model = svc.registry.get(self.model)
            with tempfile.TemporaryDirectory(prefix="aimd-dimse-") as tmp:
                image = volume_from_datasets(datasets, Path(tmp), svc.settings.limits, where=f"C-STORE series {series}")
                doc = svc.infer(model, image, actor=None, source=source, store_pacs=svc.pacs is not None)
            outcome.update(status="done", result_id=doc["id"], stored=doc.get("pacs", {}).get("stored", []))
        except AimdError as err:
            outcome.update(status="failed", error=str(err))
            svc.audit.append("dimse", "inference.failed", f"series:{series}", {"error": str(err), **source})
        except Exception as err:  # a bad series never stops the receiver
            outcome.update(status="failed", error=f"internal error: {type(err).__name__}: {err}")
            svc.audit.append("dimse", "inference.failed", f"series:{series}", {"error": outcome["error"], **source})
        self.outcomes.append(outcome)

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()


__all__ = ["StorageSCP"]
