"""Prometheus metrics of one service (its own registry, so several apps in one process stay apart).

Requests by route and status code, request latency, batch sizes, queue depth, requests in flight,
model load time.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    """The metric families of the inference service."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aimd_requests",
            "HTTP requests by route, method and status code",
            ["route", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aimd_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.batch_size = Histogram(
            "aimd_batch_size",
            "images per network call",
            ["model"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )
        self.queue_depth = Gauge(
            "aimd_queue_depth", "requests waiting for the network", ["model"], registry=self.registry
        )
        self.in_flight = Gauge("aimd_in_flight", "requests being processed", registry=self.registry)
        self.load_seconds = Gauge(
            "aimd_model_load_seconds", "time to load a model", ["model", "version"], registry=self.registry
        )
        self.inferences = Counter(
            "aimd_inferences", "inferences by model and outcome", ["model", "outcome"], registry=self.registry
        )

    def track_queue(self, model: str, depth: Callable[[], float]) -> None:
        """Report ``depth()`` as the queue depth of ``model`` at every scrape."""
        self.queue_depth.labels(model=model).set_function(depth)


__all__ = ["ServiceMetrics"]
