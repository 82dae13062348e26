"""Serving: the champion of the config's experiment behind HTTP, with FastAPI on uvicorn.

    POST /predict   rows as JSON (a list of objects) or as CSV: each row's ID columns, its prediction
                    and, for classification, each class's probability, with the run id that answered
    GET  /health    the process is up
    GET  /ready     a verified model is loaded (503 until there is one)
    GET  /metadata  the champion's run id, task, target, columns and held-out metrics
    GET  /docs      the OpenAPI documentation (/openapi.json)

Rows are checked as `predict` checks a table: a problem is a 422 naming the row and the column, a
request over the limits (rows, bytes) a 413. A new champion is served without a restart: a thread
looks at the champion record once a second, and loads the new model and checks its SHA-256 before it
replaces the old one, which answers meanwhile; a model that fails its check is never served.

FastAPI rather than bare Starlette: the OpenAPI documentation and the request handling come with it,
on the pydantic the config already uses.
"""

import asyncio
import io
import json
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from threadpoolctl import threadpool_limits

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
    """What a request may be: its rows and bytes at most, and whether columns the model was not
    trained on are left out (`--ignore-extra`, as `predict`'s) rather than refused."""

    rows: int = MAX_ROWS
    bytes: int = MAX_BYTES
    ignore_extra: bool = False


@dataclass(frozen=True)
class Served:
    champion: Champion
    model: Any


class ChampionWatcher:
    """The model being served: the champion's, replaced when the champion record changes. A thread
    of its own looks at the record and loads a new model, so that requests never wait for a load."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.served: Served | None = None
        self.problem: str | None = "not loaded yet"
        self._seen: tuple[int, int] | None = None

    def start(self) -> None:
        """Load the champion now (so that /ready can say so at once), then keep looking."""
        self._refresh()
        threading.Thread(target=self._watch, name="champion-watcher", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(CHECK_EVERY)
            try:
                self._refresh()
            except Exception as exc:  # the watcher outlives any one bad look
                logger.error("Champion record not read: %s: %s", type(exc).__name__, exc)

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
    from fastapi.responses import JSONResponse, Response

    watcher = ChampionWatcher(config)
    watcher.start()
    # One request scored at a time, in one thread on one core: requests scored side by side in
    # threads of one process only contend for the interpreter lock (half the throughput, measured),
    # and a few rows gain nothing from the model's own threads, whose start-up costs more than a
    # row's prediction. More cores: `--workers`.
    scoring = ThreadPoolExecutor(1, "scoring", initializer=threadpool_limits, initargs=(1,))
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
        served = watcher.served
        if served is None:
            return JSONResponse({"status": "no model", "detail": watcher.problem}, status_code=503)
        return JSONResponse({"status": "ready", "run_id": served.champion.run_id})

    @app.get("/metadata")
    def metadata() -> Response:
        served = watcher.served
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
        served = watcher.served
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
        if kind not in KINDS:
            detail = f"request: content type {kind}: send application/json or text/csv"
            return JSONResponse({"detail": detail}, status_code=415)
        try:
            frame = _rows(body, kind, config)
            if len(frame) > limits.rows:
                return _too_large(f"{len(frame)} rows", f"{limits.rows} rows")
            scored = await asyncio.get_running_loop().run_in_executor(
                scoring, _score, served, frame, limits.ignore_extra
            )
        except PipelineError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        run_id = json.dumps(served.champion.run_id)
        answer = '{"run_id": ' + run_id + ', "predictions": ' + scored + "}"
        return Response(answer, media_type="application/json", headers={"x-rows": str(len(frame))})

    return app


KINDS = ("application/json", "text/csv")  # what POST /predict reads
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
    try:
        rows = json.loads(body)
    except ValueError as exc:
        raise PipelineError(f"request: not JSON: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise PipelineError('request: send a list of rows, e.g. [{"column": value, ...}, ...]')
    frame = pd.DataFrame.from_records(rows)
    for name in frame.select_dtypes(include="object").columns:  # where a list or a dict can hide
        nested = frame[name].map(lambda value: isinstance(value, list | dict))
        if nested.any():
            row = int(nested.to_numpy().argmax()) + 1
            raise PipelineError(
                f"request: column '{name}': a list or an object, not a value (row {row})"
            )
    return frame


def _score(served: Served, frame: pd.DataFrame, ignore_extra: bool) -> str:
    """The request's rows checked and predicted, as the JSON of their predictions."""
    schema = served.champion.schema
    checked = check_table(
        frame, schema, source="request", labelled=False, ignore_extra=ignore_extra
    )
    result = predict(served.model, checked, schema)
    # As JSON at once (numbers to 15 significant digits, dates in ISO 8601), not as Python objects
    scored: str = result.to_json(orient="records", date_format="iso", double_precision=15)
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
    from uvicorn.supervisors import Multiprocess

    if workers < 1:
        raise PipelineError(f"--workers {workers}: give a number of processes, 1 or more")
    config = load_config(config_file, overrides)
    options: dict[str, Any] = {"access_log": False, "log_level": "warning"}
    with _listen(host, port) as listener:
        logger.info(
            "Serving %s on http://%s:%d (%d worker(s))", config.experiment, host, port, workers
        )
        if workers == 1:
            uvicorn.Server(uvicorn.Config(create_app(config, limits), **options)).run([listener])
            return
        os.environ[SETTINGS] = json.dumps(
            {
                "config": str(config_file),
                "overrides": overrides,
                "rows": limits.rows,
                "bytes": limits.bytes,
                "ignore_extra": limits.ignore_extra,
            }
        )
        factory = f"{__name__}:app_from_environment"
        processes = uvicorn.Config(factory, factory=True, workers=workers, **options)
        Multiprocess(processes, sockets=[listener]).run()


def _listen(host: str, port: int) -> socket.socket:
    """The port, bound here rather than by uvicorn: a socket it binds for its worker processes has no
    protocol number, and asyncio then leaves Nagle's algorithm on for each connection, adding some
    40 ms to every answer on a kept-alive connection (uvicorn issue 3149)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise PipelineError(
            f"serve: cannot listen on {host}:{port} ({exc.strerror}): another process holds the "
            "port, or the address is not this machine's; choose --port or --host"
        ) from None
    listener.set_inheritable(True)
    return listener


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
    limits = Limits(settings["rows"], settings["bytes"], settings["ignore_extra"])
    return create_app(config, limits)
