"""Benchmark: the annotation platform under load, SQLite and PostgreSQL side by side in one run.

Each backend gets a fresh platform (``aimd platform serve``, a real uvicorn process) with one project,
one case per simulated user and one annotate task each. Locust, used as a library (in a child process),
runs N concurrent users in one of two profiles:

* ``annotator`` (default), how people annotate (001 §10.2.1: loading, browsing, segmentation
  interaction): a user opens a task — the task list, the case image, the stored draft (its ETag) — then
  draws; the workspace's debounced autosave sends what changed every 1–3 s (think time uniform between
  ``AUTOSAVE_S`` = 1 and 3 s between saves), and after each save there is a 2 % chance
  (``SWITCH_TASK``) that the user opens a task again (list, case, mask; about once every 100 s) before the
  next save. Browsing, zoom and window/level run in the browser and send no request.
* ``stress``: every 0.2 s one of list tasks, load case, load mask (weights 2 each) or save (weight 3) —
  a user reloads the case image and mask about once a second; a stress test, not an annotator.

Saves come in one of two modes, run one after the other against the same server:

* ``whole``: ``PUT /tasks/{id}/draft`` with If-Match, a whole label mask of the case's shape sent with
  ``Content-Encoding: deflate`` (``MASK_POOL`` distinct masks built before the load starts, used in turn:
  building one costs the client ~0.1 CPU s, which would otherwise delay every simulated user);
* ``delta``: what the annotation workspace's autosave sends — ``PATCH /tasks/{id}/draft?z=&y=&x=`` with
  If-Match and the gzip ``.npy`` box of one brush stroke (3 slices × 40 × 40 voxels, a 6-voxel brush along
  a line), the next If-Match taken from the answer's ETag.

Logins (argon2id, slow on purpose), the first task opening and the first save of every user are warm-up,
not measured. The server's CPU seconds in each measured window and, measured apart and interleaved, the
CPU of one save before and after mask slabs (whole mask as one blob / as slabs, delta stroke onto a
whole-blob draft / onto a slab draft) are reported.

Values first: after each mode every acknowledged save is checked against the database and blob store —
whole mode: the last acknowledged mask of each task is stored byte-identical (SHA-256 of the stored
``.npy``, assembled from hash-checked slabs, equals the client's); delta mode: the draft the mode started
from with every acknowledged stroke written into it in order, rebuilt with numpy, equals the stored
``.npy`` byte for byte. A mismatch prints VALUES DIFFER and exits 1 before any timing is reported.
Then, per database and mode: requests, errors, p50/p95 per route and overall, server CPU per request, the
load average and the PostgreSQL / SQLite p95 ratio. Targets (001 load profile): save p95 ≤ 300 ms,
all-route p95 ≤ 500 ms, 0 errors with 50 users and a 200×512×512 uint8 mask.

Usage: ``python benchmarks/platform_load.py [--users 50] [--seconds 30] [--shape 200,512,512]
[--mode whole|delta|both] [--profile annotator|stress] [--quick] [--json]`` (``--quick``: 8 users, 10 s,
16×128×128).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from platform_saves import cpu_per_save, npy_bytes, slab_sizes, stroke

PASSWORD = "bench password 42 ok"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(data: Path, db: str | None, users: int, shape: tuple[int, int, int]) -> None:
    """Create the platform: admin, intake, N annotators, one project, N cases, N annotate tasks."""
    from aimd.core.config import PlatformSettings
    from aimd.imaging.nifti_io import write_nifti
    from aimd.imaging.volume import Volume
    from aimd.platform import Platform
    from aimd.platform.auth import create_user
    from aimd.platform.models import User
    from aimd.platform.projects import CaseImport, ProjectCreate, create_project, distribute, import_case

    settings = PlatformSettings()
    platform = Platform.open(data, database_url=db, settings=settings)
    arr = np.full(shape, -1000, np.int16)
    z, y, x = shape
    arr[z // 4 : 3 * z // 4, y // 4 : 3 * y // 4, x // 4 : 3 * x // 4] = 40
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ct.nii.gz"
        write_nifti(Volume(arr, spacing=(0.7, 0.7, 1.0), modality="CT"), path)
        image = base64.b64encode(path.read_bytes()).decode()
    with platform.sessions() as s:
        for i in range(users):
            create_user(s, platform.audit, settings, username=f"a{i}", role="annotator", password=PASSWORD)
        admin, _ = create_user(
            s, platform.audit, settings, username="admin", role="admin", password=PASSWORD, clearance=3
        )
        task_def = {
            "goal": "load test",
            "modalities": ["CT"],
            "objects_and_outputs": "lung mask",
            "alignment_rules": "n/a: one image",
            "qc_and_traceability": "autosave load",
        }
        project = create_project(
            s,
            platform.audit,
            admin,
            ProjectCreate(name="load", task_definition=task_def, label_map={1: "LUNG"}, readers=1),
        )
        for i in range(users):
            import_case(
                s, platform.audit, platform.blobs, admin, project, CaseImport(case_key=f"c{i}", image_nifti_b64=image)
            )
        distribute(s, platform.audit, admin, project)
        s.commit()
        assert s.query(User).count() == users + 1
    platform.close()


_LOCUST = r"""
import gevent, gzip, json, sys, io, os, random, hashlib, zlib
import numpy as np
from locust import HttpUser, task, constant, between
from locust.env import Environment

USERS, SECONDS, SHAPE, MODE, PROFILE = {users}, {seconds}, {shape}, {mode!r}, {profile!r}
AUTOSAVE_MIN_S, AUTOSAVE_MAX_S, SWITCH, POOL = {autosave_min}, {autosave_max}, {switch}, {pool}
sys.path.insert(0, {bench_dir!r})
from platform_saves import stroke, npy_bytes
accounts = list(range(USERS))
acked = {{}}
inflight = {{}}
started = {{}}
strokes = {{}}
ready = []

Z, Y, X = SHAPE
HEADER = {header!r}
ZERO_SLICE = bytes(Y * X)
BLOCK = min(8, Z)

def _segment(data):
    # deflate data of its own (no back-references), ending byte-aligned: segments concatenate
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

ZERO_SEGMENT = _segment(ZERO_SLICE)
FINAL = zlib.compressobj(1, zlib.DEFLATED, -15).flush()

def mask(seed):
    # a uint8 label mask (a labelled block of BLOCK slices at a seed-dependent place, the rest background)
    # as a zlib stream (Content-Encoding: deflate), built slice by slice, and the SHA-256 of its .npy bytes
    block = np.zeros((BLOCK, Y, X), np.uint8)
    y0, x0 = seed % (Y // 2), (seed * 7) % (X // 2)
    block[:, y0 : y0 + Y // 4 + 1, x0 : x0 + X // 4 + 1] = 1
    block[seed % BLOCK, 0, seed % X] = 1
    z0 = seed % (Z - BLOCK + 1)
    slices = [ZERO_SLICE] * z0 + [block[i].tobytes() for i in range(BLOCK)] + [ZERO_SLICE] * (Z - BLOCK - z0)
    sha, adler = hashlib.sha256(HEADER), zlib.adler32(HEADER)
    parts = [b"\x78\x01", _segment(HEADER)]
    for data in slices:
        sha.update(data)
        adler = zlib.adler32(data, adler)
        parts.append(ZERO_SEGMENT if data is ZERO_SLICE else _segment(data))
    parts += [FINAL, adler.to_bytes(4, "big")]
    return b"".join(parts), sha.hexdigest()

def cpu_seconds(pid):
    with open(f"/proc/{{pid}}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def load(client, url, name):
    # the server builds the whole answer before its headers: time to headers is its response time; the
    # (compressed) body is then read as it came, a viewer inflates it on its own CPU
    with client.get(url, name=name, stream=True, catch_response=True, headers={{"Accept-Encoding": "deflate"}}) as r:
        r.raw.read(decode_content=False)
        if r.status_code == 200:
            r.success()
        else:
            r.failure(f"HTTP {{r.status_code}}")

class Base(HttpUser):
    abstract = True
    def on_start(self):
        self.n = accounts.pop()
        r = self.client.post("/api/v1/auth/login", json={{"username": f"a{{self.n}}", "password": "{password}"}},
                             name="login")
        self.client.headers["Authorization"] = "Bearer " + r.json()["token"]
        self.version, self.k, self.unsure = 0, 0, False
        self.open_task()
        if MODE == "delta":
            started[self.task_id], strokes[self.task_id] = self.version, []
        self.save()
        ready.append(self.n)
    def open_task(self):
        # what the workspace does to open a task: the task list, the case image, the stored draft (its ETag)
        self.task_id = self.client.get("/api/v1/tasks", name="list tasks").json()[0]["id"]
        load(self.client, f"/api/v1/tasks/{{self.task_id}}/image", "load case")
        with self.client.get(f"/api/v1/tasks/{{self.task_id}}/draft", name="load mask", catch_response=True,
                             stream=True, headers={{"Accept-Encoding": "deflate"}}) as r:
            r.raw.read(decode_content=False)
            if r.status_code == 200 and self.k == 0:  # before this user's first save: start from the stored draft
                self.version = int(r.headers["ETag"].strip('"'))
            r.success()  # 404: no draft yet, the first save starts from version 0
    def save(self):
        if self.unsure:  # a save without an answer may be stored or not: this user stops saving
            return
        self.k += 1
        seed = self.n * 1000 + self.k
        if MODE == "delta":
            # a brush stroke: the box of changed voxels as gzip .npy at its offset, If-Match the last ETag
            at, box = stroke(seed, SHAPE)
            inflight[self.task_id] = (self.version + 1, seed)
            r = self.client.patch(f"/api/v1/tasks/{{self.task_id}}/draft?z={{at[0]}}&y={{at[1]}}&x={{at[2]}}",
                                  data=gzip.compress(npy_bytes(box), 1), name="save delta",
                                  headers={{"If-Match": f'"{{self.version}}"', "Content-Encoding": "gzip",
                                           "Content-Type": "application/octet-stream"}})
            if r.status_code == 200:
                self.version = int(r.headers["ETag"].strip('"'))
                strokes[self.task_id].append(seed)
                acked[self.task_id] = (self.version, seed)
        else:
            body, sha = MASKS[seed % len(MASKS)]
            inflight[self.task_id] = (self.version + 1, sha)
            r = self.client.put(f"/api/v1/tasks/{{self.task_id}}/draft", data=body, name="save mask",
                                headers={{"If-Match": f'"{{self.version}}"', "Content-Type": "application/octet-stream",
                                         "Content-Encoding": "deflate"}})
            if r.status_code == 200:
                self.version = r.json()["draft_version"]
                acked[self.task_id] = (self.version, sha)
        self.unsure = r.status_code == 0

class Stress(Base):
    # every 0.2 s one of: list (2), load case (2), load mask (2), save (3)
    wait_time = constant(0.2)
    @task(2)
    def list_tasks(self):
        self.client.get("/api/v1/tasks", name="list tasks")
    @task(2)
    def load_case(self):
        load(self.client, f"/api/v1/tasks/{{self.task_id}}/image", "load case")
    @task(2)
    def load_mask(self):
        load(self.client, f"/api/v1/tasks/{{self.task_id}}/draft", "load mask")
    @task(3)
    def save_task(self):
        self.save()

class Annotator(Base):
    # brush strokes saved by the debounced autosave every 1-3 s; now and then the annotator opens a task
    wait_time = between(AUTOSAVE_MIN_S, AUTOSAVE_MAX_S)
    @task
    def work(self):
        if random.random() < SWITCH:
            self.open_task()
        self.save()

# whole masks are built before the load starts: building one (52 MB hashed and deflated) takes the client
# ~0.1 CPU s, which in one gevent process would delay every user's requests and inflate their times
MASKS = [mask(i) for i in range(POOL if MODE == "whole" else 0)]
env = Environment(user_classes=[Annotator if PROFILE == "annotator" else Stress], host=sys.argv[1])
runner = env.create_local_runner()
runner.start(USERS, spawn_rate=USERS)
last, still = 0, 0
while len(ready) < USERS and still < 300:  # logins (argon2id) and first saves are warm-up, not measured
    gevent.sleep(0.1)
    still = 0 if len(ready) != last else still + 1
    last = len(ready)
env.stats.reset_all()
cpu_before, load_before = cpu_seconds(int(sys.argv[2])), os.getloadavg()[0]
gevent.sleep(SECONDS)
cpu_after, load_after = cpu_seconds(int(sys.argv[2])), os.getloadavg()[0]
runner.quit()
if MODE == "delta":
    acked_out = {{str(k): [started[k], strokes[k], inflight.get(k)] for k in started}}
else:
    acked_out = {{str(k): [v, inflight.get(k)] for k, v in acked.items()}}
out = {{"routes": {{}}, "acked": acked_out, "users_ready": len(ready), "mode": MODE, "profile": PROFILE,
        "warmup_errors": {{str(k): str(v.error)[:200] for k, v in list(env.stats.errors.items())[:5]}}}}
for (name, method), s in env.stats.entries.items():
    pct = s.get_response_time_percentile
    out["routes"][name] = {{"requests": s.num_requests, "failures": s.num_failures,
                            "p50_ms": pct(0.5), "p95_ms": pct(0.95)}}
from locust.stats import StatsEntry
mix = StatsEntry(env.stats, "mix", "")
for (name, method), s in env.stats.entries.items():
    if name != "login":
        mix.extend(s)
out["total"] = {{"requests": mix.num_requests, "failures": mix.num_failures,
                 "p95_ms": mix.get_response_time_percentile(0.95), "rps": mix.num_requests / SECONDS}}
out["server_cpu_seconds"] = round(cpu_after - cpu_before, 2)
out["server_cpu_ms_per_request"] = round(1000 * (cpu_after - cpu_before) / max(mix.num_requests, 1), 1)
out["load_average_1min"] = {{"before": round(load_before, 1), "after": round(load_after, 1)}}
print(json.dumps(out))
"""


AUTOSAVE_S = (1.0, 3.0)  # annotator profile: seconds between debounced autosaves (uniform)
SWITCH_TASK = 0.02  # annotator profile: chance per autosave of opening a task again (about every 100 s)
MASK_POOL = 97  # whole mode: distinct whole masks built before the load, used in turn by every user


def _stored(platform: Any, task_id: str) -> tuple[int, bytes, str]:
    """A task's draft version, its stored ``.npy`` bytes (assembled from hash-checked slabs) and the
    version's name."""
    from aimd.platform.mask_store import mask_npy
    from aimd.platform.models import Task

    with platform.sessions() as s:
        row = s.get(Task, int(task_id))
        version, sha = row.draft_version, row.draft_sha256
    data = mask_npy(platform.blobs, sha) if sha else b""
    return version, data, sha


def _check(
    platform: Any, acked: dict[str, list[Any]], bases: dict[str, tuple[int, bytes]], shape: tuple[int, int, int]
) -> list[str]:
    """Every task's stored draft equals its last acknowledged save (values first). Whole-mask mode: the
    SHA-256 of the last acknowledged mask. Delta mode: the draft the run started from (``bases``) with every
    acknowledged stroke written into it in order, rebuilt here with numpy and compared byte for byte."""
    bad = []
    for task_id, entry in acked.items():
        version, data, _ = _stored(platform, task_id)  # every slab is checked against its SHA-256 name
        if len(entry) == 2:  # whole-mask mode: [acknowledged (version, sha), in flight (version, sha)]
            last_acked, in_flight = entry
            found = [version, hashlib.sha256(data).hexdigest()]
            # a save still in flight when the load stopped may have been stored without its answer
            if found != list(last_acked) and (in_flight is None or found != list(in_flight)):
                bad.append(f"task {task_id}: stored version {version}, acknowledged {last_acked[0]}")
            continue
        start, seeds, in_flight = entry
        base_version, base = bases[task_id]
        if start != base_version:
            bad.append(f"task {task_id}: the run started from version {start}, the base is {base_version}")
            continue
        expected = np.load(io.BytesIO(base)) if base else np.zeros(shape, np.uint8)  # no draft yet: empty
        steps = list(seeds)
        if in_flight is not None and version == start + len(steps) + 1 and in_flight[0] == version:
            steps.append(in_flight[1])  # stored without its answer when the load stopped
        if version != start + len(steps):
            bad.append(f"task {task_id}: stored version {version}, acknowledged {start + len(seeds)}")
            continue
        for seed in steps:
            (z, y, x), box = stroke(seed, shape)
            d, h, w = box.shape
            expected[z : z + d, y : y + h, x : x + w] = box
        if steps and npy_bytes(expected) != data:
            bad.append(f"task {task_id}: stored draft differs from the base with its {len(steps)} strokes")
    return bad


def _snapshot(platform: Any, task_ids: list[str]) -> dict[str, tuple[int, bytes]]:
    """Each task's draft version and ``.npy`` bytes: the base a delta run writes its strokes into."""
    return {t: _stored(platform, t)[:2] for t in task_ids}


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settle(pid: int, limit: float = 120) -> None:
    """Wait until the server has spent no CPU for a second (requests cut off by the load stop finished)."""
    end, last = time.monotonic() + limit, -1.0
    while time.monotonic() < end:
        now = _cpu_seconds(pid)
        if now == last:
            return
        last = now
        time.sleep(1)


def _locust(
    url: str, pid: int, mode: str, profile: str, users: int, seconds: float, shape: tuple[int, int, int]
) -> dict[str, Any]:
    from aimd.platform.masks import to_npy

    header = to_npy(np.zeros(shape, np.uint8))[: -int(np.prod(shape))]
    script = _LOCUST.format(
        users=users,
        seconds=seconds,
        shape=shape,
        password=PASSWORD,
        header=header,
        mode=mode,
        profile=profile,
        autosave_min=AUTOSAVE_S[0],
        autosave_max=AUTOSAVE_S[1],
        switch=SWITCH_TASK,
        pool=MASK_POOL,
        bench_dir=str(Path(__file__).resolve().parent),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, url, str(pid)], capture_output=True, text=True, timeout=seconds + 600
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run(
    label: str,
    db: str | None,
    users: int,
    seconds: float,
    shape: tuple[int, int, int],
    modes: list[str],
    profile: str = "annotator",
) -> dict[str, dict[str, Any]]:
    """One platform per backend; the modes run one after the other against the same server, each checked
    (values first) once the server has finished the requests the load stop cut off."""
    import sqlalchemy as sa

    from aimd.core.config import PlatformSettings
    from aimd.platform import Platform
    from aimd.platform.models import Task

    data = Path(tempfile.mkdtemp(prefix=f"aimd-bench-{label}-"))
    started = time.perf_counter()
    _setup(data, db, users, shape)
    setup_s = time.perf_counter() - started
    port = _port()
    cmd = [sys.executable, "-m", "aimd.cli.main", "platform", "serve", "--data", str(data), "--port", str(port)]
    if db:
        cmd += ["--db", db]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    out: dict[str, dict[str, Any]] = {}
    platform = None
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        platform = Platform.open(data, database_url=db, settings=PlatformSettings())
        with platform.sessions() as s:
            task_ids = [str(t) for t in s.scalars(sa.select(Task.id))]
        for mode in modes:
            bases = _snapshot(platform, task_ids) if mode == "delta" else {}
            result = _locust(url, server.pid, mode, profile, users, seconds, shape)
            result["setup_seconds"] = round(setup_s, 1)
            _settle(server.pid)
            result["values_differ"] = _check(platform, result.pop("acked"), bases, shape)
            out[mode] = result
    finally:
        if platform is not None:
            platform.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)  # the platform folder of this run (database, blobs)
    return out


SAVE_ROUTE = {"whole": "save mask", "delta": "save delta"}


def _targets(r: dict[str, Any], mode: str) -> None:
    save = r["routes"].get(SAVE_ROUTE[mode], {})
    if not r["total"]["requests"] or not save.get("requests"):
        # no save completed in the measured window: no figure to compare, so no target is met
        r["targets"] = {"save_p95_le_300ms": None, "all_p95_le_500ms": None, "zero_errors": None}
        r["note"] = "not evaluated: no save completed in the measured window"
        return
    r["targets"] = {
        "save_p95_le_300ms": save["p95_ms"] <= 300,
        "all_p95_le_500ms": r["total"]["p95_ms"] <= 500,
        "zero_errors": r["total"]["failures"] == 0,
    }


def _print(results: dict[str, Any], modes: list[str]) -> None:
    users, seconds, shape = results["users"], results["seconds"], tuple(results["shape"])
    print(
        f"platform load ({results['profile']} profile): {users} users, {seconds:.0f} s, mask {shape} uint8, "
        f"modes {', '.join(modes)} (values "
        "checked: every acknowledged save stored byte-identical)"
    )
    for backend in ("sqlite", "postgresql"):
        for mode in modes:
            r = results[backend][mode]
            print(
                f"  {backend:10s} {mode:5s} requests {r['total']['requests']:6d}  errors {r['total']['failures']:3d}  "
                f"rps {r['total']['rps']:.1f}  all p95 {r['total']['p95_ms']:.0f} ms"
            )
            for name, s in sorted(r["routes"].items()):
                if s["requests"]:
                    print(
                        f"      {name:12s} n={s['requests']:5d} fail={s['failures']:3d} p50={s['p50_ms']:.0f} ms "
                        f"p95={s['p95_ms']:.0f} ms"
                    )
            print(
                f"      server CPU {r['server_cpu_seconds']} s ({r['server_cpu_ms_per_request']} ms a request)  "
                f"targets: {r['targets']}  load average {r['load_average_1min']}"
            )
    c = results["cpu_per_save"]
    print(
        f"  CPU of one save, before (one blob) / after (slabs): whole mask {c['whole_blob_cpu_s']} / "
        f"{c['whole_slabs_cpu_s']} s ({c['ratio_whole_blob_over_slabs']}x); delta stroke {c['delta_blob_cpu_s']} / "
        f"{c['delta_slabs_cpu_s']} s ({c['ratio_delta_blob_over_slabs']}x)"
    )
    for mode in modes:
        ratio = results["p95_ratio_postgresql_over_sqlite"][mode]
        print(f"  {mode} p95 ratio PostgreSQL / SQLite: " + ("not evaluated" if ratio is None else f"{ratio:.2f}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--shape", default="200,512,512")
    parser.add_argument("--mode", choices=("whole", "delta", "both"), default="both")
    parser.add_argument("--profile", choices=("annotator", "stress"), default="annotator")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--slabs", action="store_true", help="measure slab sizes 1-16 slices (CPU only) and stop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    users, seconds = (8, 10.0) if args.quick else (args.users, args.seconds)
    shape = (16, 128, 128) if args.quick else tuple(int(v) for v in args.shape.split(","))
    modes = ["whole", "delta"] if args.mode == "both" else [args.mode]
    if args.slabs:
        print(json.dumps(slab_sizes(shape), indent=2))
        return 0
    from aimd.store.pgtemp import PostgresServer, pg_bindir

    results: dict[str, Any] = {
        "users": users,
        "seconds": seconds,
        "shape": list(shape),
        "modes": modes,
        "profile": args.profile,
    }
    results["cpu_per_save"] = cpu_per_save(shape)
    results["sqlite"] = _run("sqlite", None, users, seconds, shape, modes, args.profile)
    bindir = pg_bindir()
    if bindir is None:
        print("PostgreSQL binaries not found: apt-get install postgresql", file=sys.stderr)
        return 2
    pg = PostgresServer(bindir)
    try:
        results["postgresql"] = _run("postgresql", pg.create_database(), users, seconds, shape, modes, args.profile)
    finally:
        pg.stop()
    differ = {
        f"{b} {m}": results[b][m]["values_differ"]
        for b in ("sqlite", "postgresql")
        for m in modes
        if results[b][m]["values_differ"]
    }
    if differ:
        print(f"VALUES DIFFER: {differ}")
        return 1
    results["p95_ratio_postgresql_over_sqlite"] = {}
    for mode in modes:
        for backend in ("sqlite", "postgresql"):
            _targets(results[backend][mode], mode)
        p95 = [
            results[b][mode]["total"]["p95_ms"] if results[b][mode]["total"]["requests"] else None
            for b in ("postgresql", "sqlite")
        ]
        results["p95_ratio_postgresql_over_sqlite"][mode] = p95[0] / p95[1] if p95[0] and p95[1] else None
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results, modes)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AIMD_LOG_LEVEL", "WARNING")
    sys.exit(main())
