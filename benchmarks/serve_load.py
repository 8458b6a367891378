"""Benchmark: the inference service under load, and one phantom study through the PACS loop.

1. **Dynamic batching vs batch size 1** on the 2-D reference model, ``--model device-nodules`` by
   default: the shipped radiograph nodule detector, served by name (torch, its own box decoding),
   fed the DX DICOM of a phantom case (the phantom generator's radiograph at the training grid,
   103 × 64 pixels, padded to 112 × 64). ``--model vit`` keeps the earlier subject: the zoo's
   ``vit-small`` classifier (64² PNG input, exported to ONNX). The model is served by ``aimd serve``
   (a real uvicorn process) with ``--max-batch 1`` (the peer) and with dynamic batching
   (``--max-batch 16 --max-wait-ms W`` for each ``--max-wait-ms`` value, 10 and 0 by default).
   Locust, used as a library, runs 16 concurrent clients posting the image for the same wall time
   against each server. Values are compared first: the first answer of every server must give the
   same findings, and every answer under load is checked against it by the client (a different
   finding counts as an error). Reported: requests per second, p50/p95 latency, errors, and the
   throughput ratio batched / batch-1 (target ≥ 1.5× with 0 errors).
2. **The batcher alone**: the same model and 16 threads calling it through the batcher, without HTTP,
   result files or the audit log — what batching gives where the network dominates.
3. **End to end, one 128³ phantom study**, with the ONNX blob segmenter and with the shipped 3-D
   ``device-lesions``. A real Orthanc holds the phantom CT series; the time of one
   ``POST /v2/models/{m}/infer {study_uid, series_uid}`` is measured: QIDO + WADO pull → inference →
   findings → SEG + SR → STOW to Orthanc, with the service's own per-stage timings.

Each mode runs ``--rounds`` times, interleaved, with the load average, the server's CPU per request
(``/proc``) and Locust's; the network call alone is timed in CPU per image at batch 1, 8 and 16 with
the runtime the service picked, which bounds what batching can give (Amdahl: only the network call
gets cheaper).

For ``device-nodules`` the network call is also timed with ONNX Runtime (the network exported with
a dynamic batch axis): the service serves the device with torch, since an exported file would lose
its box decoding, so this figure only says what the other runtime would give.

Usage: ``python benchmarks/serve_load.py [--model device-nodules|vit] [--seconds 20] [--users 16]
[--rounds 2] [--threads 2] [--no-end-to-end] [--json]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# as in ``aimd serve`` (set before torch loads): the network call alone is timed the way the service runs it
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _png(seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = (rng.random((64, 64)) * 60000).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _classifier(folder: Path) -> Path:
    import torch

    from aimd.models.export import export_module_onnx
    from aimd.models.specs import OutputSpec
    from aimd.models.zoo import build_network, get_entry

    torch.manual_seed(0)
    entry = get_entry("vit-small")
    net = build_network("vit-small", out_channels=2).eval()
    out = OutputSpec(
        task="classification", labels={0: "no_nodule", 1: "nodule"}, activation="softmax", target="nodule_present"
    )
    return export_module_onnx(
        net, folder / "vit-small.onnx", entry.input_spec, out, {"model": "vit-small"}, exporter="torchscript"
    )


SUBJECTS = ("device-nodules", "vit")


def _dx_dicom(folder: Path) -> bytes:
    """The DX DICOM of one phantom case on the grid the detector was trained on (64³)."""
    from aimd.phantoms import generate_dataset

    generate_dataset(folder / "dx", cases=1, seed=5, size=64, workers=1)
    return (folder / "dx" / "cases" / "case_0001" / "dx.dcm").read_bytes()


def subject(name: str, folder: Path) -> dict[str, Any]:
    """What is served and posted: ``--model`` argument, request body and type, network input shape."""
    if name == "vit":
        model = _classifier(folder)
        return {
            "name": "vit",
            "source": str(model),
            "serve": f"vit={model}@1.0",
            "body": _png(),
            "content_type": "image/png",
            "input_shape": (1, 64, 64),
        }
    if name != "device-nodules":
        raise SystemExit(f"--model: use one of {SUBJECTS}")
    body = _dx_dicom(folder)
    import pydicom

    rows, cols = pydicom.dcmread(io.BytesIO(body)).pixel_array.shape
    return {
        "name": "nodules",
        "source": "device-nodules",
        "serve": "nodules=device-nodules",
        "body": body,
        "content_type": "application/dicom",
        "input_shape": (1, rows + (-rows) % 16, cols + (-cols) % 16),
    }


def finding_values(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What the comparison checks of every finding: label, grade, confidence and box."""
    return [(f["label"], f["grade"], f["confidence"], f.get("box_px")) for f in doc["findings"]]


def _token(data: Path) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aimd.cli.main",
            "serve",
            "token",
            "create",
            "--scope",
            "infer",
            "--data",
            str(data),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(out.stdout)["token"])


def _locust(
    url: str, token: str, subj: dict[str, Any], expected: list[Any], users: int, seconds: float
) -> dict[str, Any]:
    """Run Locust in a child process (its gevent patching stays out of this one); its CPU seconds too.

    Every answer's findings are compared with ``expected``; a different one is a failure.
    """
    code = f"""
import gevent, json, sys
from locust import HttpUser, task, constant
from locust.env import Environment

EXPECTED = json.loads({json.dumps(expected)!r})

def values(doc):
    return [[f["label"], f["grade"], f["confidence"], f.get("box_px")] for f in doc["findings"]]

class Client(HttpUser):
    host = {url!r}
    wait_time = constant(0)

    @task
    def infer(self):
        with self.client.post("/v2/models/{subj["name"]}/infer", data=BODY, catch_response=True,
                              headers={{"Authorization": "Bearer {token}", "Content-Type": "{subj["content_type"]}"}},
                              name="infer") as r:
            if r.status_code != 200:
                r.failure(f"HTTP {{r.status_code}}")
            elif values(r.json()) != EXPECTED:
                r.failure("different findings")

BODY = open(sys.argv[1], "rb").read()
env = Environment(user_classes=[Client])
runner = env.create_local_runner()
runner.start({users}, spawn_rate={users})
gevent.sleep({seconds})
runner.quit()
s = env.stats.total
print(json.dumps({{"requests": s.num_requests, "failures": s.num_failures, "rps": s.total_rps,
                  "p50_ms": s.get_response_time_percentile(0.5), "p95_ms": s.get_response_time_percentile(0.95)}}))
"""
    with tempfile.NamedTemporaryFile(suffix=".body", delete=False) as f:
        f.write(subj["body"])
    before = _children_cpu()
    out = subprocess.run([sys.executable, "-c", code, f.name], capture_output=True, text=True, check=True)
    client_cpu = _children_cpu() - before
    os.unlink(f.name)
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    result["client_cpu_ms_per_request"] = round(1000 * client_cpu / max(result["requests"], 1), 2)
    return result


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system, its threads included) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mean_batch(metrics: str) -> float | None:
    sums = [line for line in metrics.splitlines() if line.startswith("aimd_batch_size_sum")]
    counts = [line for line in metrics.splitlines() if line.startswith("aimd_batch_size_count")]
    if not (sums and counts):
        return None
    return round(float(sums[0].split()[-1]) / max(float(counts[0].split()[-1]), 1.0), 2)


def modes(waits: list[float]) -> dict[str, list[str]]:
    """Server options of the batch-1 peer and of dynamic batching with each ``--max-wait-ms``."""
    out = {"batch1": ["--max-batch", "1"]}
    for wait in waits:
        out[f"dynamic-{wait:g}ms"] = ["--max-batch", "16", "--max-wait-ms", f"{wait:g}"]
    return out


def batching(
    seconds: float,
    users: int,
    rounds: int = 2,
    threads: int = 2,
    waits: list[float] | None = None,
    model: str = "device-nodules",
) -> dict[str, Any]:
    """Batch-1 and dynamic servers, ``rounds`` runs each, interleaved (batch-1, dynamic, batch-1, ...)."""
    runs_of = modes(waits or [10.0])
    import requests

    from serving_support import aimd_server

    out: dict[str, Any] = {"model": model, "users": users, "seconds": seconds, "threads": threads, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subj = subject(model, root)
        name = subj["name"]
        answers: dict[str, Any] = {}
        for round_no in range(rounds):
            for label, args in runs_of.items():
                data = root / f"{label}-{round_no}"
                token = _token(data)
                serve_args = ["--model", subj["serve"], "--no-explain", "--rate", "100000"]
                with aimd_server([*serve_args, "--threads", str(threads), *args], data) as (url, proc):
                    headers = {"Authorization": f"Bearer {token}", "Content-Type": subj["content_type"]}
                    first = requests.post(
                        f"{url}/v2/models/{name}/infer", data=subj["body"], timeout=60, headers=headers
                    )
                    first.raise_for_status()
                    answers[label] = json.loads(json.dumps(finding_values(first.json())))
                    meta = requests.get(f"{url}/v2/models/{name}", headers=headers, timeout=10).json()
                    out["runtime"] = meta["platform"]
                    load_before = round(os.getloadavg()[0], 1)
                    cpu_before = _process_cpu(proc.pid)
                    run = _locust(url, token, subj, answers[label], users, seconds)
                    run["server_cpu_ms_per_request"] = round(
                        1000 * (_process_cpu(proc.pid) - cpu_before) / max(run["requests"], 1), 2
                    )
                    run["mean_batch"] = _mean_batch(requests.get(f"{url}/metrics", timeout=10).text)
                    run.update(mode=label, round=round_no + 1, load_average=[load_before, round(os.getloadavg()[0], 1)])
                    out["runs"].append(run)
        out["same_answer"] = all(answer == answers["batch1"] for answer in answers.values())
        out["findings"] = len(answers["batch1"])
        for label in runs_of:
            runs = [r for r in out["runs"] if r["mode"] == label]
            out[label] = {
                "requests": sum(r["requests"] for r in runs),
                "failures": sum(r["failures"] for r in runs),
                "rps": round(sum(r["rps"] for r in runs) / len(runs), 1),
                "p95_ms": max(r["p95_ms"] for r in runs),
                "server_cpu_ms_per_request": round(statistics.median(r["server_cpu_ms_per_request"] for r in runs), 2),
                "client_cpu_ms_per_request": round(statistics.median(r["client_cpu_ms_per_request"] for r in runs), 2),
            }
        out["throughput_ratio"] = {
            label: round(out[label]["rps"] / max(out["batch1"]["rps"], 1e-9), 2)
            for label in runs_of
            if label != "batch1"
        }
        out["model_alone"] = model_alone(subj["source"], out["runtime"], threads, subj["input_shape"])
        if subj["source"] == "device-nodules":
            out["model_alone_onnxruntime"] = nodules_onnxruntime(root, threads, subj["input_shape"])
    out["amdahl"] = amdahl(out)
    return out


def model_alone(
    source: str | Path, runtime: str, threads: int, shape: tuple[int, ...] = (1, 64, 64)
) -> dict[str, float]:
    """CPU milliseconds per image of the network call alone at batch 1, 8 and 16 (the service's runtime)."""
    from aimd.models.adapters import load_predictor

    return _time_logits(load_predictor(source, threads=threads, runtime=runtime), shape)


def nodules_onnxruntime(folder: Path, threads: int, shape: tuple[int, ...]) -> dict[str, float]:
    """The device-nodules network exported to ONNX (dynamic batch axis), timed with ONNX Runtime."""
    from aimd.models import load_reference
    from aimd.models.adapters import load_predictor
    from aimd.models.export import export_module_onnx

    det = load_reference("device-nodules", threads=threads)
    path = export_module_onnx(
        det.module,
        folder / "nodules.onnx",
        det.input_spec,
        det.output_spec,
        {"model": "device-nodules"},
        exporter="torchscript",
    )
    ort = load_predictor(path, threads=threads, runtime="onnxruntime")
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    out = _time_logits(ort, shape)
    out["max_abs_diff_to_torch"] = float(np.abs(ort._logits(x) - det._logits(x)).max())
    return out


def _time_logits(predictor: Any, shape: tuple[int, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for size in (1, 8, 16):
        x = np.random.default_rng(0).random((size, *shape), dtype=np.float32)
        predictor._logits(x)  # warm-up
        calls = max(8, 256 // size)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(calls):
            predictor._logits(x)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
        out[f"batch{size}_cpu_ms_per_image"] = round(1000 * cpu / (calls * size), 3)
    return out


def amdahl(result: dict[str, Any]) -> dict[str, float]:
    """The most batching can give a CPU-bound server when only the network call gets cheaper (Amdahl).

    The model's share is its batch-1 CPU per image over the CPU per request of the batch-1 server
    (and of server + Locust client, which share the same cores here); the gain is that share shrinking
    to its batch-16 cost. A server that is not CPU-bound — on a loaded machine the one thread that
    runs the network waits to be scheduled for every call — can gain more: a batch pays that wait
    once for all its images; the CPU per request beside each run tells the two apart.
    """
    model = result["model_alone"]
    single, batched = model["batch1_cpu_ms_per_image"], model["batch16_cpu_ms_per_image"]
    server = result["batch1"]["server_cpu_ms_per_request"]
    system = server + result["batch1"]["client_cpu_ms_per_request"]
    saved = max(single - batched, 0.0)
    return {
        "model_share_of_server_cpu": round(single / server, 3),
        "model_share_of_system_cpu": round(single / system, 3),
        "bound_server": round(server / max(server - saved, 1e-9), 2),
        "bound_system": round(system / max(system - saved, 1e-9), 2),
    }


def batcher_alone(users: int, seconds: float, model: str = "device-nodules") -> dict[str, Any]:
    """The batching mechanism without HTTP, storage and audit: ``users`` threads calling the model.

    Each call is announced first (as the service does when a request arrives), so a batch waits for
    callers between two calls but never for nobody.
    """
    import threading

    from aimd.models.adapters import load_predictor
    from aimd.serving.batching import BatchedPredictor, DynamicBatcher

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        subj = subject(model, Path(tmp))
        base = load_predictor(subj["source"])
        x = np.random.default_rng(0).random((1, *subj["input_shape"]), dtype=np.float32)
        answers = {}
        for label, max_batch in (("batch1", 1), ("dynamic", 16)):
            batcher = DynamicBatcher(base, max_batch=max_batch, max_wait_ms=10, queue_size=256)
            answers[label] = BatchedPredictor(base, batcher).predict(x)
            done = [0] * users
            stop = time.perf_counter() + seconds

            def worker(k: int, batcher: DynamicBatcher = batcher, stop: float = stop, done: list[int] = done) -> None:
                while time.perf_counter() < stop:
                    with batcher.expect() as ticket:
                        BatchedPredictor(base, batcher, ticket=ticket).predict(x)
                    done[k] += 1

            usage = resource.getrusage(resource.RUSAGE_SELF)
            threads = [threading.Thread(target=worker, args=(k,)) for k in range(users)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            after = resource.getrusage(resource.RUSAGE_SELF)
            batcher.close()
            out[label] = round(sum(done) / seconds, 1)
            cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
            out[f"{label}_cpu_ms_per_image"] = round(1000 * cpu / max(sum(done), 1), 3)
        out["same_answer"] = bool(np.allclose(answers["batch1"], answers["dynamic"], atol=1e-5))
        out["ratio"] = round(out["dynamic"] / max(out["batch1"], 1e-9), 2)
    return out


def end_to_end() -> dict[str, Any]:
    import pydicom
    import requests

    from serving_support import aimd_server, export_models, orthanc_missing, orthanc_server, upload_to_orthanc

    if orthanc_missing():
        return {"skipped": orthanc_missing()}
    from aimd.phantoms import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_dataset(root / "ph", cases=1, seed=0, size=128, workers=1)
        files = sorted((root / "ph" / "cases" / "case_0001" / "ct").glob("*.dcm"))
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        models = export_models(root / "models")
        with orthanc_server(root / "orthanc") as pacs:
            upload_to_orthanc(pacs, files)
            data = root / "data"
            token = _token(data)
            env = {"AIMD_PACS_USER": pacs["auth"][0], "AIMD_PACS_PASSWORD": pacs["auth"][1]}
            args = ["--model", f"blob={models['onnx']}@1.0", "--model", "lesions=device-lesions"]
            out: dict[str, Any] = {}
            with aimd_server([*args, "--pacs", str(pacs["dicomweb"])], data, env=env) as (url, _proc):
                for name, label in (("blob", "blob_onnx"), ("lesions", "device_lesions")):
                    started = time.perf_counter()
                    r = requests.post(
                        f"{url}/v2/models/{name}/infer",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"study_uid": str(ds.StudyInstanceUID), "series_uid": str(ds.SeriesInstanceUID)},
                        timeout=900,
                    )
                    wall = time.perf_counter() - started
                    r.raise_for_status()
                    doc = r.json()
                    out[label] = {
                        "shape": doc["input"]["shape"],
                        "wall_seconds": round(wall, 2),
                        "stages": doc["timings"],
                        "findings": len(doc["findings"]),
                        "stored": len(doc["pacs"]["stored"]),
                    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=SUBJECTS, default="device-nodules", help="2-D model served (default: the shipped device)"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode, interleaved")
    parser.add_argument("--threads", type=int, default=2, help="inference threads per model (aimd serve --threads)")
    parser.add_argument(
        "--max-wait-ms", type=float, nargs="+", default=[10.0, 0.0], help="dynamic modes to compare (one per value)"
    )
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the 128³ PACS study")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "batching": batching(args.seconds, args.users, args.rounds, args.threads, args.max_wait_ms, args.model),
        "batcher_alone": batcher_alone(args.users, min(args.seconds, 10.0), args.model),
        "end_to_end_128": {"skipped": "--no-end-to-end"} if args.no_end_to_end else end_to_end(),
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    b = result["batching"]
    print(
        f"{b['model']}: {b['users']} clients, {b['seconds']:.0f} s per run, {b['runtime']} with {b['threads']} "
        f"threads, same findings ({b['findings']}) from every server: {b['same_answer']}"
    )
    for run in b["runs"]:
        print(
            f"  {run['mode']:14s} round {run['round']}: {run['rps']:7.1f} req/s  p50 {run['p50_ms']:5.0f} ms  "
            f"p95 {run['p95_ms']:5.0f} ms  errors {run['failures']}  mean batch {run['mean_batch']}  "
            f"CPU/request server {run['server_cpu_ms_per_request']} ms + client {run['client_cpu_ms_per_request']} ms"
            f"  load {run['load_average'][0]} → {run['load_average'][1]}"
        )
    if b["same_answer"]:
        for label, ratio in b["throughput_ratio"].items():
            s = b[label]
            print(
                f"  throughput ratio {label} / batch-1: {ratio}× (target ≥ 1.5×); p95 {s['p95_ms']} ms vs "
                f"{b['batch1']['p95_ms']} ms; errors {s['failures']} vs {b['batch1']['failures']}"
            )
    else:
        print("  the two servers answered differently: no ratio")
    m, a = b["model_alone"], b["amdahl"]
    print(
        f"  network call alone, CPU ms per image: batch 1 {m['batch1_cpu_ms_per_image']}, batch 8 "
        f"{m['batch8_cpu_ms_per_image']}, batch 16 {m['batch16_cpu_ms_per_image']}; its share of the batch-1 "
        f"CPU per request: {a['model_share_of_server_cpu']:.0%} of the server's, {a['model_share_of_system_cpu']:.0%} "
        f"with the client; CPU-bound limit (Amdahl): {a['bound_server']}× (server), "
        f"{a['bound_system']}× (server + client on these cores)"
    )
    if "model_alone_onnxruntime" in b:
        o = b["model_alone_onnxruntime"]
        print(
            "  the same network with ONNX Runtime (not served): CPU ms per image "
            f"batch 1 {o['batch1_cpu_ms_per_image']}, "
            f"batch 8 {o['batch8_cpu_ms_per_image']}, batch 16 {o['batch16_cpu_ms_per_image']} "
            f"(max |Δ| to torch {o['max_abs_diff_to_torch']:.1e})"
        )
    c = result["batcher_alone"]
    print(
        f"batcher alone ({b['users']} threads, no HTTP/storage/audit): batch-1 {c['batch1']} img/s "
        f"({c['batch1_cpu_ms_per_image']} CPU ms/img), dynamic {c['dynamic']} img/s "
        f"({c['dynamic_cpu_ms_per_image']} CPU ms/img), ratio {c['ratio']}×, same answer: {c['same_answer']}"
    )
    e = result["end_to_end_128"]
    if "skipped" in e:
        print(f"end to end: skipped ({e['skipped']})")
    else:
        for label, run in e.items():
            print(
                f"end to end {run['shape']} ({label}): {run['wall_seconds']} s (PACS pull → inference → SEG + SR "
                f"stored), {run['findings']} findings; stages {run['stages']}"
            )
    print(f"load average (1, 5, 15 min): before {result['load_average_before']}, after {result['load_average_after']}")


if __name__ == "__main__":
    main()
