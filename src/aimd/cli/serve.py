"""``aimd serve`` — run the inference service; ``aimd serve token ...`` — manage its API tokens."""

from __future__ import annotations

import os
from pathlib import Path

import typer

# before torch loads (a shipped device runs on torch): idle OpenMP threads sleep instead of spinning,
# which on a loaded machine cost ten times the network's own CPU at --threads 2 (also in --workers
# processes, which inherit the environment), unless the caller chose a policy
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from aimd.cli.common import JsonOption, console, err_console, new_typer, print_json, status

app = new_typer(
    "Run the inference service (KServe v2 API, PACS loop, explanations, audit).\n\n"
    "Example: aimd serve --model lung=models/lung.onnx@1.0 --pacs http://127.0.0.1:8042/dicom-web"
)
token_app = new_typer("API tokens of the inference service.\n\nExample: aimd serve token create --scope infer")
app.add_typer(token_app, name="token")

DataOption = typer.Option(Path("aimd-serve"), "--data", help="Folder for results, jobs and the database.")
DbOption = typer.Option(None, "--db", help="Database URL (default: DATA/serving.db, SQLite).")


_OPTION = {"request_timeout": "--timeout", "rate_per_minute": "--rate", "database_url": "--db", "data_dir": "--data"}


def _settings(data: Path, db: str | None, **kw: object):
    """Service settings from the options; a value out of range names its option (exit 2)."""
    from pydantic import ValidationError

    from aimd.core.errors import InvalidInputError
    from aimd.serving.settings import ServeSettings

    try:
        return ServeSettings(data_dir=data.resolve(), database_url=db, **kw)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        option = _OPTION.get(field, "--" + field.replace("_", "-"))
        raise InvalidInputError(
            f"{first['msg']} (got {first.get('input')!r})", where=option, hint=f"see aimd serve --help for {option}"
        ) from None


@app.callback(invoke_without_command=True, epilog="Example: aimd serve --model blob=blob.onnx@1.0 --port 8000")
def run(
    ctx: typer.Context,
    model: list[str] = typer.Option(None, "--model", help="NAME=PATH[@VERSION]; repeat for more models or versions."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (non-loopback needs TLS)."),
    port: int = typer.Option(8000, "--port", help="HTTP port."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key."),
    pacs: str | None = typer.Option(
        None, "--pacs", help="DICOMweb root of the PACS (user/password from AIMD_PACS_USER / AIMD_PACS_PASSWORD)."
    ),
    pacs_timeout: float = typer.Option(30.0, "--pacs-timeout", help="Seconds a PACS call may take."),
    pacs_retries: int = typer.Option(
        3, "--pacs-retries", help="Repeats of a PACS call that failed for a transient reason (down, slow, 5xx)."
    ),
    pacs_backoff: float = typer.Option(
        0.5, "--pacs-backoff", help="Seconds before the first repeat; doubled each time."
    ),
    runtime: str = typer.Option(
        "auto",
        "--runtime",
        help="For ONNX files: auto (the faster of the two, measured at load), onnxruntime or openvino.",
    ),
    data: Path = DataOption,
    db: str | None = DbOption,
    max_batch: int = typer.Option(8, "--max-batch", help="Most images per network call (1: no batching)."),
    max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", help="Longest wait for a batch to fill."),
    queue_size: int = typer.Option(64, "--queue-size", help="Most waiting requests per model (more: 503)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Per-request timeout in seconds."),
    max_upload_mb: int = typer.Option(512, "--max-upload-mb", help="Largest upload."),
    max_voxels: int = typer.Option(512 * 512 * 1024, "--max-voxels", help="Largest image in voxels."),
    rate: int = typer.Option(600, "--rate", help="Requests per token per minute."),
    high: float = typer.Option(0.9, "--grade-high", help="Confidence above which a finding is 'high'."),
    review: float = typer.Option(0.7, "--grade-review", help="Confidence below which review is recommended."),
    no_explain: bool = typer.Option(False, "--no-explain", help="Skip heatmaps and explanations."),
    explain_method: str = typer.Option(
        "gradcam", "--explain-method", help="Gradient explanation of PyTorch models: gradcam or gradcampp."
    ),
    dicom_port: int | None = typer.Option(None, "--dicom-port", help="Also accept DICOM C-STORE on this port."),
    ae_title: str = typer.Option("AIMD", "--ae-title", help="AE title of the storage SCP."),
    dicom_model: str | None = typer.Option(
        None, "--dicom-model", help="Model run on pushed series (default: the first --model)."
    ),
    series_idle: float = typer.Option(
        3.0, "--series-idle", help="Seconds without a new instance after which a pushed series is complete."
    ),
    threads: int = typer.Option(2, "--threads", help="Inference threads per model."),
    workers: int = typer.Option(
        1, "--workers", help="Inference worker processes; each loads every model (see docs/serving.md)."
    ),
    index: Path | None = typer.Option(
        None, "--index", help="Embedding index of reference cases (aimd serve index) for similar cases."
    ),
) -> None:
    """Serve models over HTTP until interrupted (subcommand ``token`` manages API tokens)."""
    if ctx.invoked_subcommand is not None:
        return
    if not model:
        from aimd.core.errors import InvalidInputError

        raise InvalidInputError(
            "no model to serve", where="--model", hint="pass --model NAME=PATH or NAME=PATH@VERSION"
        )
    import uvicorn

    from aimd.serving.app import create_app
    from aimd.serving.findings import GradeThresholds
    from aimd.serving.inputs import UploadLimits
    from aimd.serving.registry import ModelRegistry, parse_model_arg

    settings = _settings(
        data,
        db,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        pacs_url=pacs,
        pacs_user=os.environ.get("AIMD_PACS_USER"),
        pacs_password=os.environ.get("AIMD_PACS_PASSWORD"),
        pacs_timeout=pacs_timeout,
        pacs_retries=pacs_retries,
        pacs_backoff=pacs_backoff,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        request_timeout=timeout,
        limits=UploadLimits(max_bytes=max_upload_mb * 2**20, max_voxels=max_voxels),
        rate_per_minute=rate,
        grades=GradeThresholds(high=high, review=review),
        explain=not no_explain,
        explain_method=explain_method,
        dicom_port=dicom_port,
        ae_title=ae_title,
        dimse_model=dicom_model,
        series_idle_seconds=series_idle,
        index_path=index,
        workers=workers,
    )
    settings.check_bind()
    registry = ModelRegistry(threads=threads)
    for spec in model:
        name, path, version = parse_model_arg(spec)
        loaded = registry.load(name, path, version, runtime=runtime)
        err_console.print(
            f"loaded {loaded.key} ({loaded.runtime}, sha256 {loaded.sha256[:12]}) in {loaded.load_seconds:.2f} s",
            highlight=False,
        )
    app_ = create_app(settings, registry)
    scheme = "https" if settings.tls else "http"
    err_console.print(f"aimd serve on {scheme}://{host}:{port} (OpenAPI: /docs)", highlight=False)
    uvicorn.run(
        app_,
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@token_app.command("create", epilog="Example: aimd serve token create --scope infer --scope review --json")
def token_create(
    scope: list[str] = typer.Option(..., "--scope", help="infer, review or admin; repeat for several."),
    name: str = typer.Option("", "--name", help="Who or what uses the token."),
    data: Path = DataOption,
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Create a token; it is printed once, only its argon2 hash is stored."""
    from aimd.serving.db import ServingDB

    settings = _settings(data, db)
    store = ServingDB(settings.database)
    token, tid = store.create_token(scope, name=name)
    from aimd.store.audit import AuditLog

    AuditLog(store.engine).append("cli", "token.create", f"token:{tid}", {"scopes": scope, "name": name or tid})
    if json_out:
        print_json({"id": tid, "token": token, "scopes": scope, "name": name or tid})
    else:
        console.print(f"token {tid} ({', '.join(scope)}) — shown once, store it now:", highlight=False)
        print(token)


@token_app.command("list", epilog="Example: aimd serve token list --json")
def token_list(data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """List tokens (ids, names, scopes; never the secret)."""
    from aimd.serving.db import ServingDB

    rows = ServingDB(_settings(data, db).database).tokens()
    if json_out:
        print_json(rows)
        return
    for r in rows:
        state = f"revoked {r['revoked']}" if r["revoked"] else "active"
        console.print(f"{r['id']}  {r['name']}  {' '.join(r['scopes'])}  {state}", highlight=False)


@token_app.command("revoke", epilog="Example: aimd serve token revoke 3f2a9c01b2de")
def token_revoke(
    token_id: str = typer.Argument(..., help="Token id."),
    data: Path = DataOption,
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Revoke a token."""
    from aimd.core.errors import InvalidInputError
    from aimd.serving.db import ServingDB
    from aimd.store.audit import AuditLog

    store = ServingDB(_settings(data, db).database)
    if not store.revoke_token(token_id):
        raise InvalidInputError(f"no active token {token_id!r}", where="TOKEN_ID", hint="see `aimd serve token list`")
    AuditLog(store.engine).append("cli", "token.revoke", f"token:{token_id}", {})
    if json_out:
        print_json({"id": token_id, "revoked": True})
    else:
        console.print(f"revoked {token_id}", highlight=False)


@app.command("index", epilog="Example: aimd serve index --model runs/lesions --data phantoms/ --out index.npz")
def build_index(
    model: Path = typer.Option(..., "--model", help="Training run folder of the served model."),
    data: Path = typer.Option(..., "--data", help="Reference dataset (aimd phantom layout) with lesions."),
    out: Path = typer.Option(..., "--out", help="Index file to write (.npz)."),
    json_out: bool = JsonOption,
) -> None:
    """Embed every reference lesion with the model's encoder, for the similar-cases explanation."""
    from aimd.models.adapters import load_predictor
    from aimd.serving.registry import model_hash
    from aimd.serving.similar import EmbeddingIndex

    with status(f"loading model {model}", enabled=not json_out) as update:
        predictor = load_predictor(model)
        update(f"embedding the reference lesions of {data}")
        idx = EmbeddingIndex.build(predictor, model_hash(model), data)
    idx.save(out)
    result = {
        "out": str(out),
        "lesions": len(idx.items),
        "dims": int(idx.vectors.shape[1]),
        "model_sha256": idx.model_sha256,
    }
    if json_out:
        print_json(result)
    else:
        console.print(f"indexed {result['lesions']} lesions ({result['dims']} features) → {out}", highlight=False)
