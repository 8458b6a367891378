"""Shared helpers beneath the characteristics: scoring, sampling, artefacts, pixel losses, attacks, ONNX copies."""
