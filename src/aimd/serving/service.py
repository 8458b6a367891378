"""The inference service without HTTP: models, batchers, database, audit, PACS and the job runner.

:class:`InferenceService` is what the routes call. Every inference — synchronous, asynchronous job
or DIMSE push — goes through :meth:`InferenceService.infer`, which records it in the shared audit
trail (003 §5.2): time, token id, model@version and weights hash, input hash, output hashes,
result id; reviews are recorded the same way.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.atomic import atomic_dir
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.hashing import sha256_bytes
from aimd.core.ids import short_id
from aimd.serving.batching import BatchedPredictor, DynamicBatcher, Ticket
from aimd.serving.db import ServingDB, TokenInfo
from aimd.serving.errors import NotFoundError, RateLimitedError
from aimd.serving.health import Readiness
from aimd.serving.inputs import InputImage, read_upload, volume_from_datasets
from aimd.serving.metrics import ServiceMetrics
from aimd.serving.pipeline import Timer, load_result, mask_of, new_result_id, run_inference, store_to_pacs
from aimd.serving.registry import LoadedModel, ModelRegistry
from aimd.serving.settings import ServeSettings

DECISIONS = ("accept", "reject", "modified")


class RateLimiter:
    """Token bucket per API token: ``rate`` requests per minute, bursts up to the same number."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one request of ``key``'s budget or raise :class:`RateLimitedError`."""
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, (self.capacity, now))
            level = min(self.capacity, level + (now - last) * self.rate)
            if level < 1:
                self._buckets[key] = (level, now)
                wait = (1 - level) / self.rate
                raise RateLimitedError(
                    f"rate limit of {self.capacity:.0f} requests per minute reached",
                    retry_after=wait,
                    where="Authorization",
                    hint=f"retry after {wait:.1f} s",
                )
            self._buckets[key] = (level - 1, now)


class InferenceService:
    """Everything a running service holds; built by the app factory, closed at shutdown."""

    def __init__(self, settings: ServeSettings, registry: ModelRegistry | None = None) -> None:
        from aimd.store.audit import AuditLog

        self.settings = settings
        self.registry = registry or ModelRegistry()
        self.results_dir = settings.data_dir / "results"
        self.jobs_dir = settings.data_dir / "jobs"
        for d in (self.results_dir, self.jobs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.db = ServingDB(settings.database)
        self.audit = AuditLog(self.db.engine)
        self.metrics = ServiceMetrics()
        self.rate = RateLimiter(settings.rate_per_minute)
        self._batchers: dict[str, DynamicBatcher] = {}
        self._batch_lock = threading.Lock()
        self._jobs = ThreadPoolExecutor(max_workers=settings.job_workers, thread_name_prefix="aimd-job")
        self.pacs = None
        if settings.pacs_url:
            from aimd.serving.pacs import Pacs

            self.pacs = Pacs(
                settings.pacs_url,
                user=settings.pacs_user,
                password=settings.pacs_password,
                timeout=settings.pacs_timeout,
                retries=settings.pacs_retries,
                backoff=settings.pacs_backoff,
                backoff_max=settings.pacs_backoff_max,
            )
        self.readiness = self._readiness()
        self.index = None
        if settings.index_path is not None:
            from aimd.serving.similar import EmbeddingIndex

            self.index = EmbeddingIndex.load(settings.index_path)
        self.pool = None
        if settings.workers > 1:
            from aimd.serving.pool import InferencePool

            self.pool = InferencePool(self.registry.all(), settings.workers, threads=self.registry.threads)
        for model in self.registry.all():
            self._register_model(model)

    def _readiness(self) -> Readiness:
        """What /v2/health/ready asks: the database and, when configured, the PACS (short timeouts)."""
        from sqlalchemy import text

        def database() -> None:
            with self.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        probes = {"database": (self.db.engine.url.render_as_string(hide_password=True), database)}
        if self.pacs is not None:
            pacs = self.pacs
            probes["PACS"] = (pacs.url, lambda: pacs.probe(timeout=2.0))
        return Readiness(probes, timeout=3.0)

    # ------------------------------------------------------------------ models
    def _register_model(self, model: LoadedModel) -> None:
        self.metrics.load_seconds.labels(model=model.name, version=model.version).set(model.load_seconds)
        self.metrics.track_queue(
            model.key, lambda key=model.key: float(self._batchers[key].depth) if key in self._batchers else 0.0
        )
        self.audit.append(
            "service",
            "model.load",
            f"model:{model.key}",
            {"sha256": model.sha256, "path": str(model.path), "runtime": model.runtime},
        )

    def load_model(self, name: str, path: str, version: str | None, actor: str) -> LoadedModel:
        """Load one more model version (admin)."""
        model = self.registry.load(name, path, version)
        self._register_model(model)
        self.audit.append(actor, "model.load.request", f"model:{model.key}", {"sha256": model.sha256})
        return model

    def unload_model(self, name: str, version: str | None, actor: str) -> LoadedModel:
        """Unload one model version (admin); its queued requests finish first."""
        model = self.registry.unload(name, version)
        with self._batch_lock:
            batcher = self._batchers.pop(model.key, None)
        if batcher is not None:
            batcher.close()
        self.audit.append(actor, "model.unload", f"model:{model.key}", {"sha256": model.sha256})
        return model

    def batcher(self, model: LoadedModel) -> DynamicBatcher:
        """The dynamic batcher of ``model`` (created on first use)."""
        with self._batch_lock:
            if model.key not in self._batchers:
                hist = self.metrics.batch_size.labels(model=model.key)
                pool = self.pool if self.pool is not None and self.pool.has(model.key) else None
                self._batchers[model.key] = DynamicBatcher(
                    model.predictor,
                    max_batch=self.settings.max_batch,
                    max_wait_ms=self.settings.max_wait_ms,
                    queue_size=self.settings.queue_size,
                    on_batch=hist.observe,
                    runner=None if pool is None else lambda batch, key=model.key, p=pool: p.submit(key, batch),
                    concurrency=1 if pool is None else pool.workers,
                )
            return self._batchers[model.key]

    # ------------------------------------------------------------------ auth
    def authorize(self, token: str | None, scope: str) -> TokenInfo:
        """Check a bearer token has ``scope`` and is within its rate."""
        from aimd.serving.errors import AuthenticationError, ScopeError

        if not token:
            raise AuthenticationError(
                "no bearer token",
                where="Authorization",
                hint="send 'Authorization: Bearer <token>'; create one with `aimd serve token create --scope infer`",
            )
        info = self.db.check_token(token)
        if scope not in info.scopes:
            raise ScopeError(
                f"token {info.id} lacks the {scope!r} scope (has {list(info.scopes)})",
                where="Authorization",
                hint=f"create a token with --scope {scope}",
            )
        self.rate.take(info.id)
        return info

    # ------------------------------------------------------------------ inference
    def read_input(self, parts: list[tuple[str, bytes]], workdir: Path) -> InputImage:
        """Checked input from uploaded files."""
        return read_upload(parts, self.settings.limits, workdir)

    def pull_from_pacs(self, study_uid: str, series_uid: str, workdir: Path) -> InputImage:
        """QIDO + WADO the series from the PACS into a checked input."""
        if self.pacs is None:
            raise InvalidInputError(
                "this service has no PACS configured",
                where="study_uid",
                hint="start it with --pacs URL, or upload the series",
            )
        self.pacs.find_series(study_uid, series_uid)
        datasets = self.pacs.retrieve_series(study_uid, series_uid)
        return volume_from_datasets(datasets, workdir, self.settings.limits, where="series_uid")

    def infer(
        self,
        model: LoadedModel,
        image: InputImage,
        *,
        actor: TokenInfo | None,
        source: dict[str, Any],
        cancel: threading.Event | None = None,
        result_id: str | None = None,
        store_pacs: bool = False,
        timer: Timer | None = None,
        ticket: Ticket | None = None,
    ) -> dict[str, Any]:
        """Run one inference (through the model's batcher), audit it, optionally STOW the results.

        ``ticket`` (from :meth:`DynamicBatcher.expect`, taken when the request arrived) is released
        once the network calls are over.
        """
        from aimd.serving.explain import Explainer

        timer = timer or Timer()
        predictor = BatchedPredictor(
            model.predictor, self.batcher(model), timeout=self.settings.request_timeout, cancel=cancel, ticket=ticket
        )
        explainer = (
            Explainer(
                occlusion_mask=self.settings.occlusion_mask,
                index=self.index,
                gradient_method=self.settings.explain_method,
            )
            if self.settings.explain
            else None
        )
        started = time.perf_counter()
        try:
            doc = run_inference(
                model,
                image,
                self.results_dir,
                predictor=predictor,
                thresholds=self.settings.grades,
                result_id=result_id,
                explainer=explainer,
                timer=timer,
                source=source,
                on_predicted=None if ticket is None else ticket.release,
                started=started,
            )
        except AimdError:
            self.metrics.inferences.labels(model=model.key, outcome="rejected").inc()
            raise
        stored: list[str] = []
        if store_pacs:
            if self.pacs is None:
                raise InvalidInputError(
                    "no PACS configured to store the results", where="store", hint="start the service with --pacs URL"
                )
            stored = timer.run("pacs_store", lambda: store_to_pacs(self.pacs, self.results_dir, doc))
            doc["pacs"] = {"stored": stored, "url": self.settings.pacs_url}
            doc["timings"] = {**timer.stages, "total": round(time.perf_counter() - started, 4)}
            self._rewrite(doc)
        self.metrics.inferences.labels(model=model.key, outcome="ok").inc()
        self.audit.append(
            f"token:{actor.id}" if actor else "dimse",
            "inference",
            f"result:{doc['id']}",
            {
                "model": f"{model.name}@{model.version}",
                "model_sha256": model.sha256,
                "input_sha256": image.sha256,
                "output_sha256": doc["output_sha256"],
                "source": source,
                "findings": len(doc["findings"]),
                "grades": [f["grade"] for f in doc["findings"]],
                "pacs_stored": stored,
            },
        )
        return doc

    def _rewrite(self, doc: dict[str, Any]) -> None:
        from aimd.core.atomic import atomic_write_text

        atomic_write_text(self.results_dir / doc["id"] / "result.json", json.dumps(doc, indent=2, ensure_ascii=False))

    def result(self, result_id: str) -> dict[str, Any]:
        """A stored result with its reviews; :class:`NotFoundError` when unknown."""
        doc = load_result(self.results_dir, result_id)
        if doc is None:
            raise NotFoundError(f"no result {result_id!r}", where="result_id", hint="use the id an inference returned")
        doc["reviews"] = self.db.reviews(result_id)
        return doc

    def result_file(self, result_id: str, name: str) -> Path:
        """Path of one result file (``mask.nii.gz``, ``seg.dcm``...); :class:`NotFoundError` otherwise."""
        doc = self.result(result_id)
        files = {Path(v).name: v for v in doc["files"].values()}
        if name not in files:
            raise NotFoundError(
                f"result {result_id} has no file {name!r}", where="name", hint=f"use one of {sorted(files)}"
            )
        return self.results_dir / result_id / files[name]

    # ------------------------------------------------------------------ jobs
    def submit_job(
        self, model: LoadedModel, request: dict[str, Any], parts: list[tuple[str, bytes]], actor: TokenInfo
    ) -> str:
        """Persist an asynchronous request (its files first, then the queued job row) and schedule it."""
        job_id = new_result_id()
        with atomic_dir(self.jobs_dir / job_id) as folder:
            names = []
            for k, (name, data) in enumerate(parts):
                stored = f"{k:05d}_{short_id(name, length=8)}"
                (folder / stored).write_bytes(data)
                names.append([name, stored])
            (folder / "request.json").write_text(json.dumps({**request, "files": names}), encoding="utf-8")
        self.db.add_job(job_id, model.name, model.version, {**request, "files": names}, actor.id)
        self.audit.append(
            f"token:{actor.id}",
            "job.accept",
            f"job:{job_id}",
            {
                "model": model.key,
                "input_sha256": sha256_bytes(b"".join(d for _, d in parts)) if parts else None,
                "request": {k: v for k, v in request.items() if k != "files"},
            },
        )
        self._jobs.submit(self.run_job, job_id)
        return job_id

    def run_job(self, job_id: str) -> None:
        """Run one queued job (at most once): claim, infer, mark done or failed, audit."""
        if not self.db.claim_job(job_id):
            return
        job = self.db.job(job_id)
        assert job is not None
        req = job["request"]
        actor = TokenInfo(job["token_id"] or "unknown", "", ())
        error = None
        result_id = None
        try:  # a PACS that is slow or briefly down is retried call by call (aimd.serving.pacs)
            model = self.registry.get(job["model"], job["version"])
            with tempfile.TemporaryDirectory(prefix="aimd-job-") as tmp:
                if req.get("study_uid"):
                    image = self.pull_from_pacs(req["study_uid"], req["series_uid"], Path(tmp))
                    source = {"pacs": {"study_uid": req["study_uid"], "series_uid": req["series_uid"]}}
                else:
                    parts = [(name, (self.jobs_dir / job_id / stored).read_bytes()) for name, stored in req["files"]]
                    image = self.read_input(parts, Path(tmp))
                    source = {"upload": [n for n, _ in req["files"]]}
                doc = self.infer(
                    model,
                    image,
                    actor=actor,
                    source={**source, "job": job_id},
                    store_pacs=bool(req.get("store")),
                    result_id=job_id,
                )
            result_id = doc["id"]
        except AimdError as err:
            error = f"{type(err).__name__}: {err}"
        except Exception as err:  # a job never stays "running" because of an unexpected error
            error = f"internal error: {type(err).__name__}: {err}"
        if error and result_id is None:
            shutil.rmtree(self.results_dir / job_id, ignore_errors=True)
        self.db.finish_job(job_id, result_id=result_id, error=error)
        self.audit.append(
            f"token:{actor.id}",
            "job.failed" if error else "job.done",
            f"job:{job_id}",
            {"result_id": result_id, "error": error},
        )

    def recover(self) -> dict[str, list[str]]:
        """At start-up: fail interrupted jobs, schedule queued ones."""
        interrupted, queued = self.db.recover_jobs()
        for job_id in interrupted:
            shutil.rmtree(self.results_dir / job_id, ignore_errors=True)
            self.audit.append("service", "job.failed", f"job:{job_id}", {"error": "interrupted by a restart"})
        for job_id in queued:
            self._jobs.submit(self.run_job, job_id)
        return {"interrupted": interrupted, "queued": queued}

    # ------------------------------------------------------------------ reviews
    def review(
        self,
        result_id: str,
        *,
        reviewer: str,
        decision: str,
        actor: TokenInfo,
        comment: str = "",
        mask: tuple[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """Record a clinician's decision on a result, with Dice and changed voxels against the AI mask."""
        doc = self.result(result_id)
        if decision not in DECISIONS:
            raise InvalidInputError(f"unknown decision {decision!r}", where="decision", hint=f"use one of {DECISIONS}")
        if not reviewer.strip():
            raise InvalidInputError("reviewer is empty", where="reviewer", hint="name the reviewing clinician")
        ai = mask_of(self.results_dir, doc)
        dice: float | None = None
        changed: int | None = None
        mask_sha = None
        if decision == "modified":
            if mask is None:
                raise InvalidInputError(
                    "a modified review needs the corrected mask",
                    where="mask",
                    hint="upload the corrected mask as NIfTI in the 'mask' field",
                )
            if ai is None:
                raise InvalidInputError(
                    "this result has no mask to modify",
                    where="decision",
                    hint="use accept or reject for classification results",
                )
            with tempfile.TemporaryDirectory(prefix="aimd-review-") as tmp:
                corrected = read_upload([mask], self.settings.limits, tmp, where="mask")
            final = np.asarray(corrected.volume.array)
            if final.shape != ai.shape:
                raise InvalidInputError(
                    f"mask shape {final.shape} differs from the result's {ai.shape}",
                    where="mask",
                    hint="edit the result's mask.nii.gz and upload it",
                )
            mask_sha = corrected.sha256
        elif ai is not None:
            final = ai if decision == "accept" else np.zeros_like(ai)
        if ai is not None:
            a, b = ai > 0, final > 0
            denom = int(a.sum() + b.sum())
            dice = 1.0 if denom == 0 else round(2.0 * float((a & b).sum()) / denom, 6)
            changed = int((ai.astype(np.int64) != final.astype(np.int64)).sum())
        row = self.db.add_review(
            result_id,
            reviewer.strip(),
            decision,
            token_id=actor.id,
            dice=dice,
            changed_voxels=changed,
            mask_sha256=mask_sha,
            comment=comment,
        )
        self.audit.append(
            f"token:{actor.id}",
            "review",
            f"result:{result_id}",
            {
                "reviewer": reviewer.strip(),
                "decision": decision,
                "dice": dice,
                "changed_voxels": changed,
                "mask_sha256": mask_sha,
                "model": f"{doc['model']['name']}@{doc['model']['version']}",
            },
        )
        return row

    def close(self) -> None:
        """Stop batchers, the job pool and the readiness probes."""
        self._jobs.shutdown(wait=False, cancel_futures=True)
        self.readiness.close()
        with self._batch_lock:
            for b in self._batchers.values():
                b.close()
            self._batchers.clear()
        if self.pool is not None:
            self.pool.close()


__all__ = ["DECISIONS", "InferenceService", "RateLimiter"]
