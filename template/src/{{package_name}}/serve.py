"""Serving: the champion of the config's experiment behind HTTP, with FastAPI on uvicorn.

    POST /predict   rows as JSON (a list of objects) or as CSV: each row's ID columns, its prediction
                    and, for classification, each class's probability, with the run id that answered
    GET  /health    the process is up
    GET  /ready     a verified model is loaded (503 until there is one)
    GET  /metadata  the champion's run id, task, target, columns and held-out metrics
    GET  /docs      the OpenAPI documentation (/openapi.json)

Rows are checked as `predict` checks a table: a problem is a 422 naming the row and the column, a
request over the limits (rows, bytes) a 413. A new champion is served without a restart: the champion
record is looked at, at most once a second, and the new model is loaded and its SHA-256 checked before
it replaces the old one, which answers meanwhile; a model that fails its check is never served.

FastAPI rather than bare Starlette: the OpenAPI documentation and the request handling come with it,
on the pydantic the config already uses.
"""

import io
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .config import Config, load_config
from .data import check_table
from .errors import PipelineError
from .pipeline import require_champion
from .predict import predict
from .registry import MODEL, Champion, champion_file

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)

# A request's limits, unless `serve --max-rows/--max-bytes` say otherwise.
MAX_ROWS = 10_000
MAX_BYTES = 10_000_000
# Seconds between two looks at the champion record.
CHECK_EVERY = 1.0
# How `serve --workers N` passes its settings to the worker processes uvicorn starts.
SETTINGS = f"{__package__.upper()}_SERVE"


@dataclass(frozen=True)
class Limits:
    rows: int = MAX_ROWS
    bytes: int = MAX_BYTES


@dataclass(frozen=True)
class Served:
    champion: Champion
    model: Any


class ChampionWatcher:
    """The model being served: the champion's, replaced when the champion record changes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.served: Served | None = None
        self.problem: str | None = "not loaded yet"
        self._seen: tuple[int, int] | None = None
        self._checked = -CHECK_EVERY
        self._lock = threading.Lock()

    def current(self) -> Served | None:
        """The model to answer with, after a look at the champion record when one is due."""
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY and self._lock.acquire(blocking=False):
            try:  # one request looks (and loads); the others answer with the model they find
                self._checked = now
                self._refresh()
            finally:
                self._lock.release()
        return self.served

    def _refresh(self) -> None:
        record = champion_file(self.config.outputs, self.config.experiment)
        try:
            stat = record.stat()
            seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            seen = None
        if self.served is not None and seen == self._seen:
            return
        self._seen = seen
        try:
            champion = require_champion(self.config)
            if self.served is None or champion.run_id != self.served.champion.run_id:
                self.served = Served(champion, champion.load(MODEL))
                logger.info(
                    "Serving run %s, the champion of %s", champion.run_id, champion.experiment
                )
            self.problem = None
        except PipelineError as exc:
            if str(exc) != self.problem:
                still = " (the model loaded before keeps answering)" if self.served else ""
                logger.error("Champion not loaded: %s%s", exc, still)
            self.problem = str(exc)


def create_app(config: Config, limits: Limits = Limits()) -> "FastAPI":
    """The HTTP application serving the champion of the config's experiment."""
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response
    from threadpoolctl import ThreadpoolController

    watcher = ChampionWatcher(config)
    watcher.current()  # loaded before the first request, so that /ready can say so at once
    threads = ThreadpoolController()  # the OpenMP and BLAS libraries the model calls
    app = FastAPI(title=config.experiment, summary="Predictions of the champion of this experiment")

    @app.middleware("http")
    async def log_request(request: Request, call_next: Any) -> Any:
        """One line per request: no values, only their count."""
        start = time.perf_counter()
        response = await call_next(request)
        logger.info(
            "%s %s %d rows=%s %.1f ms",
            request.method,
            request.url.path,
            response.status_code,
            response.headers.get("x-rows", "-"),
            (time.perf_counter() - start) * 1000,
        )
        return response

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> Response:
        served = watcher.current()
        if served is None:
            return JSONResponse({"status": "no model", "detail": watcher.problem}, status_code=503)
        return JSONResponse({"status": "ready", "run_id": served.champion.run_id})

    @app.get("/metadata")
    def metadata() -> Response:
        served = watcher.current()
        if served is None:
            return JSONResponse({"detail": watcher.problem}, status_code=503)
        champion = served.champion
        return JSONResponse(
            {
                "run_id": champion.run_id,
                "experiment": champion.experiment,
                "schema": champion.metadata.get("schema"),
                "metrics": champion.metadata.get("metrics"),
            }
        )

    @app.post("/predict", openapi_extra=PREDICT_BODY)
    async def predict_rows(request: Request) -> Response:
        served = watcher.current()
        if served is None:
            return JSONResponse({"detail": watcher.problem}, status_code=503)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.bytes:
            return _too_large(f"{declared} bytes", f"{limits.bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():  # never more than the limit in memory
            body += chunk
            if len(body) > limits.bytes:
                return _too_large(f"more than {limits.bytes} bytes", f"{limits.bytes} bytes")
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        try:
            frame = _rows(body, kind, config)
            if len(frame) > limits.rows:
                return _too_large(f"{len(frame)} rows", f"{limits.rows} rows")
            scored = await run_in_threadpool(_score, served, frame, threads)
        except PipelineError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        answer = {"run_id": served.champion.run_id, "predictions": scored}
        return JSONResponse(answer, headers={"x-rows": str(len(scored))})

    return app


PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "object"}},
                "example": [{"column": "value"}],
            },
            "text/csv": {"schema": {"type": "string"}, "example": "column\nvalue\n"},
        },
    }
}


def _rows(body: bytearray, kind: str, config: Config) -> pd.DataFrame:
    """The request's rows as a table: a JSON list of objects, or CSV with a header."""
    if kind == "text/csv":
        try:
            return pd.read_csv(io.BytesIO(body), na_values=list(config.data.na_values))
        except (ValueError, UnicodeDecodeError) as exc:
            raise PipelineError(f"request: not a CSV table with a header: {exc}") from None
    if kind != "application/json":
        raise PipelineError(f"request: content type {kind}: send application/json or text/csv")
    try:
        rows = json.loads(body)
    except ValueError as exc:
        raise PipelineError(f"request: not JSON: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise PipelineError('request: send a list of rows, e.g. [{"column": value, ...}, ...]')
    return pd.DataFrame.from_records(rows)


def _score(served: Served, frame: pd.DataFrame, threads: Any) -> list[dict[str, Any]]:
    """The request's rows checked and predicted, on one core: a request's few rows gain nothing
    from threads, whose start-up cost a gradient boosting's prediction of one row many times over
    (and concurrent requests, or `--workers`, use the other cores)."""
    schema = served.champion.schema
    checked = check_table(frame, schema, source="request", labelled=False)
    with threads.limit(limits=1):
        result = predict(served.model, checked, schema)
    scored: list[dict[str, Any]] = json.loads(result.to_json(orient="records", date_format="iso"))
    return scored


def _too_large(size: str, limit: str) -> "JSONResponse":
    from fastapi.responses import JSONResponse

    detail = f"request: {size}, over the limit of {limit}: send fewer rows per request"
    return JSONResponse({"detail": detail}, status_code=413)


def serve(
    config_file: Path,
    overrides: list[str],
    *,
    host: str,
    port: int,
    workers: int,
    limits: Limits,
) -> None:
    """Answer requests until stopped (Ctrl-C, SIGTERM); `workers` processes share the port."""
    import uvicorn

    if workers < 1:
        raise PipelineError(f"--workers {workers}: give a number of processes, 1 or more")
    config = load_config(config_file, overrides)
    logger.info("Serving %s on http://%s:%d (%d worker(s))", config.experiment, host, port, workers)
    options: dict[str, Any] = {"host": host, "port": port, "access_log": False}
    options["log_level"] = "warning"
    if workers == 1:
        uvicorn.run(create_app(config, limits), **options)
        return
    os.environ[SETTINGS] = json.dumps(
        {
            "config": str(config_file),
            "overrides": overrides,
            "rows": limits.rows,
            "bytes": limits.bytes,
        }
    )
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)


def app_from_environment() -> "FastAPI":
    """The application of one of `serve --workers N`'s processes, from the settings it was given."""
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s %(levelname)-7s [worker {os.getpid()}] %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger(__package__).setLevel(logging.INFO)
    settings = json.loads(os.environ[SETTINGS])
    config = load_config(Path(settings["config"]), settings["overrides"])
    return create_app(config, Limits(rows=settings["rows"], bytes=settings["bytes"]))
