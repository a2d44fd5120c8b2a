"""Batch scoring with Ray Data: selections in bulk through the same predictor as online serving.

How a job runs (:func:`score_batch`, behind ``betml predict batch``):

1. The model reference (``name``, ``name@alias``, ``name/<version>``) is resolved once, that exact
   version is downloaded in the driver and its artifact folder is packed into the object store,
   so scoring actors on any node load it with :func:`cluster.artifacts.load_predictor` without
   reaching MLflow (a SQLite store exists only on the driver's machine).
2. The input's columns are checked against the artifact before any work: ``event_key``,
   ``market_key`` and the model's feature columns must all be there.
3. The rows are hash-partitioned by (event_key, market_key), so every market lands whole in one
   block, and ``map_batches(batch_size=None)`` hands whole blocks to the scorer: ``predict_proba``
   normalises within markets and always sees complete ones. Ray's own ``map_groups`` relies on
   the same co-location; unlike it, a block is scored in one vectorised call, not market by
   market.
4. An autoscaling pool of :class:`MarketScorer` actors (1 to the cluster's CPUs, started at the
   largest) scores the blocks as pandas frames, one CPU and one LightGBM thread each.
5. The narrow result (the input's identifying columns, ``p_model``, ``model_name``,
   ``model_version``) streams back to the driver, which writes it atomically: a temporary file
   or folder renamed into place, or a staging table renamed (or inserted) into the target in one
   transaction. A failed job leaves the destination as it was.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pq
import ray
from ray.data.context import ShuffleStrategy
from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.pool import NullPool

from betting.errors import InvalidInput, NotFound
from cluster.artifacts import ArtifactMeta, load_predictor, read_meta

# Scoring actors import this module: MLflow (cluster.tracking) and the store's Alembic set-up
# (betting.store) are imported where the driver needs them, which keeps actor start-up short.

MARKET_KEYS = ["event_key", "market_key"]
#: Input columns carried to the output when present, beside the probability.
ID_COLUMNS = ["event_key", "market_key", "selection", "participant", "starts_at", "season"]
P_COLUMN = "p_model"
MODEL_NAME_COLUMN = "model_name"
MODEL_VERSION_COLUMN = "model_version"
SQL_PREFIX = "sql:"
TABLE_PREFIX = "table:"
#: Rows of one scored block (one hash partition, one ``predict_proba`` call), by default.
DEFAULT_ROWS_PER_BATCH = 100_000
SQL_CHUNK_ROWS = 10_000

IfExists = Literal["fail", "replace", "append"]
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- where rows come from and go to -----------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where the selections come from."""

    kind: Literal["parquet", "csv", "sql"]
    location: str
    """A file or folder path (parquet, csv), or a query (sql, run against ``DATABASE_URL``)."""

    @classmethod
    def parse(cls, text_: str) -> Source:
        """``sql:SELECT ...``, ``table:NAME``, a ``.csv`` file or folder of them, else Parquet."""
        if text_.startswith(SQL_PREFIX):
            query = text_.removeprefix(SQL_PREFIX).strip().rstrip(";")
            if not query:
                raise InvalidInput("--input sql: needs a query, e.g. 'sql:SELECT * FROM features'")
            return cls("sql", query)
        if text_.startswith(TABLE_PREFIX):
            return cls("sql", f"SELECT * FROM {_table_name(text_.removeprefix(TABLE_PREFIX))}")
        path = Path(text_).expanduser()
        if not path.exists():
            raise NotFound(f"input {text_} does not exist")
        csv_only = all(p.suffix.lower() == ".csv" for p in _data_files(path))
        return cls("csv" if csv_only else "parquet", str(path.resolve()))


@dataclass(frozen=True)
class Sink:
    """Where the probabilities go."""

    kind: Literal["parquet", "parquet_folder", "csv", "table"]
    location: str
    """The path, or the table name (in ``DATABASE_URL``)."""

    @classmethod
    def parse(cls, text_: str) -> Sink:
        """``table:NAME``, a ``.parquet`` or ``.csv`` file, else a folder of Parquet parts."""
        if text_.startswith(TABLE_PREFIX):
            return cls("table", _table_name(text_.removeprefix(TABLE_PREFIX)))
        path = Path(text_).expanduser().resolve()
        suffix = path.suffix.lower()
        kind = {".parquet": "parquet", ".csv": "csv"}.get(suffix, "parquet_folder")
        return cls(kind, str(path))  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"table {self.location}" if self.kind == "table" else self.location


def _table_name(name: str) -> str:
    if not _TABLE_NAME.fullmatch(name.strip()):
        raise InvalidInput(f"table name {name!r} must be letters, digits and '_'")
    return name.strip()


def _data_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    if not files:
        raise InvalidInput(f"input folder {path} holds no data files")
    return files


# --- the model, packed for the actors ---------------------------------------------------------


@dataclass(frozen=True)
class ModelPackage:
    """One registered model version, its artifact folder packed as a tar archive."""

    name: str
    version: int
    meta: ArtifactMeta
    archive: bytes


def fetch_model(reference: str, *, client: Any = None) -> ModelPackage:
    """Resolve ``reference`` once, download that version and pack its artifact folder."""
    from cluster import tracking

    name, version = tracking.resolve(reference, client=client)
    with tempfile.TemporaryDirectory(prefix="betml-model-") as tmp:
        folder = tracking.download_model(f"{name}/{version}", tmp, client=client)
        return package_artifact(folder, name=name, version=version)


def package_artifact(folder: Path, *, name: str, version: int) -> ModelPackage:
    """Pack a local artifact folder (for a model that is not in the registry, e.g. in tests)."""
    meta = read_meta(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return ModelPackage(name, version, meta, buffer.getvalue())


class MarketScorer:
    """A Ray Data actor: loads the predictor once, then scores market-complete pandas batches."""

    def __init__(self, archive: Any, name: str, version: int, keep: list[str]) -> None:
        if isinstance(archive, ray.ObjectRef):
            archive = ray.get(archive)
        with tempfile.TemporaryDirectory(prefix="betml-model-") as tmp:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.extractall(tmp, filter="data")
            # Predictors hold their model in memory once loaded: the folder can go.
            self.predictor = load_predictor(Path(tmp))
        self.name, self.version, self.keep = name, version, keep

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        out = batch[self.keep].copy()
        out[P_COLUMN] = self.predictor.predict_proba(batch)
        out[MODEL_NAME_COLUMN] = self.name
        out[MODEL_VERSION_COLUMN] = self.version
        return out


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionFactory:
    """A picklable DB-API connection factory for ``ray.data.read_sql``."""

    url: str

    def __call__(self) -> Any:
        return create_engine(self.url, poolclass=NullPool).raw_connection()


def absolute_database_url(url: str) -> str:
    """``url`` with a relative SQLite path made absolute (workers run in other folders)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(False)


def input_columns(source: Source, database_url: str) -> list[str]:
    """The input's column names, read cheaply (Parquet metadata, CSV header, SQL ``LIMIT 0``)."""
    if source.kind == "parquet":
        return list(_parquet(source).schema.names)
    if source.kind == "csv":
        first = sorted(_data_files(Path(source.location)))[0]
        with first.open(newline="") as f:
            return next(csv.reader(f), [])
    with closing(ConnectionFactory(database_url)()) as connection:
        cursor = connection.cursor()
        cursor.execute(f"SELECT * FROM ({source.location}) AS betml_input LIMIT 0")
        return [d[0] for d in cursor.description]


def _parquet(source: Source) -> pa_dataset.Dataset:
    return pa_dataset.dataset(source.location, format="parquet", exclude_invalid_files=True)


def check_columns(columns: list[str], meta: ArtifactMeta, source: Source, model: str) -> None:
    """Refuse an input that lacks a key column or one of the model's features."""
    missing = [c for c in [*MARKET_KEYS, *meta.feature_columns] if c not in columns]
    if missing:
        raise InvalidInput(
            f"input {source.location} lacks column(s) {missing} that {model} needs "
            f"(event_key, market_key and its {len(meta.feature_columns)} feature columns)"
        )


def read_source(
    source: Source, columns: list[str], meta: ArtifactMeta, database_url: str, blocks: int
) -> Any:
    """A Ray dataset of ``columns`` of the input (only those are read where the format allows)."""
    if source.kind == "parquet":
        # Ray 2.60's default (V2) Parquet reader starts footer-reading actors on every read:
        # seconds of process start-up on a small machine, more than reading a million rows. The
        # V1 reader reads the footers in the driver.
        context = ray.data.DataContext.get_current()
        v2, context.use_datasource_v2 = context.use_datasource_v2, False
        try:
            dataset = ray.data.read_parquet(source.location, override_num_blocks=blocks)
        finally:
            context.use_datasource_v2 = v2
        return dataset.select_columns(columns)
    if source.kind == "csv":
        types = {c: pa.float64() for c in meta.feature_columns}
        types |= {c: pa.string() for c in ID_COLUMNS if c != "starts_at"}
        convert = pa_csv.ConvertOptions(column_types=types, include_columns=columns)
        return ray.data.read_csv(source.location, convert_options=convert, file_extensions=["csv"])
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    query = f"SELECT {quoted} FROM ({source.location}) AS betml_input"
    return ray.data.read_sql(query, ConnectionFactory(database_url))


def estimated_rows(source: Source, database_url: str) -> int:
    """Rows of the input: exact for Parquet (metadata) and SQL, estimated for CSV (file size)."""
    if source.kind == "parquet":
        return int(_parquet(source).count_rows())
    if source.kind == "sql":
        with closing(ConnectionFactory(database_url)()) as connection:
            cursor = connection.cursor()
            cursor.execute(f"SELECT COUNT(*) FROM ({source.location}) AS betml_input")
            return int(cursor.fetchone()[0])
    files = _data_files(Path(source.location))
    with files[0].open("rb") as f:
        sample = f.read(1 << 20)
    bytes_per_row = len(sample) / max(sample.count(b"\n"), 1)
    return math.ceil(sum(p.stat().st_size for p in files) / bytes_per_row)


def market_complete(dataset: Any, partitions: int) -> Any:
    """``dataset`` in ``partitions`` blocks, every market whole in one block.

    Rows are hash-partitioned by market (``GroupedData.map_groups`` co-locates groups the same
    way); one partition needs no shuffle, only the blocks put together.
    """
    if partitions == 1:
        return dataset.repartition(1)
    # The read gave this job its own copy of the context. Of the hash shuffles, the first
    # (HASH_SHUFFLE) costs the least here: SHUFFLE_V2 runs its map tasks in dedicated worker
    # processes, started afresh for each job.
    dataset.context.shuffle_strategy = ShuffleStrategy.HASH_SHUFFLE
    return dataset.repartition(partitions, keys=MARKET_KEYS)


# --- writing ----------------------------------------------------------------------------------


class Writer(Protocol):
    """Receives the scored batches; nothing appears at the destination before :meth:`commit`."""

    def write(self, table: pa.Table) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class FileWriter:
    """One Parquet or CSV file, written beside the destination and renamed over it."""

    def __init__(self, dest: Path, kind: Literal["parquet", "csv"]) -> None:
        self.dest, self.kind = dest, kind
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            cls = pq.ParquetWriter if self.kind == "parquet" else pa_csv.CSVWriter
            self._schema = table.schema
            self._writer = cls(str(self.tmp), table.schema)
        self._writer.write_table(table.cast(self._schema))

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
            os.replace(self.tmp, self.dest)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


class FolderWriter:
    """A folder of Parquet parts (one per scored block), built aside and renamed into place."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        self.parts = 0
        self.schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        self.schema = self.schema or table.schema
        pq.write_table(table.cast(self.schema), self.tmp / f"part-{self.parts:05d}.parquet")
        self.parts += 1

    def commit(self) -> None:
        if not self.parts:
            shutil.rmtree(self.tmp)
            return
        aside = self.dest.parent / f".{self.dest.name}.{uuid.uuid4().hex[:8]}.old"
        if self.dest.exists():  # replacing: the old folder steps aside for the new one
            os.replace(self.dest, aside)
        os.replace(self.tmp, self.dest)
        shutil.rmtree(aside, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def transactional_engine(url: str) -> Engine:
    """An engine whose transactions include DDL on SQLite too (pysqlite's own BEGIN skips it)."""
    from betting.store import create_engine_for

    engine = create_engine_for(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

    return engine


class TableWriter:
    """A SQL table: batches go to a staging table, which one transaction renames or inserts."""

    def __init__(self, url: str, table: str, if_exists: IfExists) -> None:
        self.engine = transactional_engine(url)
        self.table, self.if_exists = table, if_exists
        self.staging = f"{table}_staging_{uuid.uuid4().hex[:8]}"
        self.rows = 0
        self._quote = self.engine.dialect.identifier_preparer.quote

    def write(self, table: pa.Table) -> None:
        frame = table.to_pandas()
        with self.engine.begin() as connection:
            frame.to_sql(self.staging, connection, if_exists="append", index=False,
                         chunksize=SQL_CHUNK_ROWS)  # fmt: skip
        self.rows += len(frame)

    def commit(self) -> None:
        if not self.rows:
            return
        target, staging = self._quote(self.table), self._quote(self.staging)
        with self.engine.begin() as connection:
            exists = inspect(connection).has_table(self.table)
            if exists and self.if_exists == "fail":
                raise InvalidInput(f"table {self.table} appeared while scoring; nothing written")
            if exists and self.if_exists == "append":
                columns = ", ".join(
                    self._quote(c["name"]) for c in inspect(connection).get_columns(self.staging)
                )
                connection.execute(
                    text(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging}")
                )
                connection.execute(text(f"DROP TABLE {staging}"))
                return
            if exists:
                connection.execute(text(f"DROP TABLE {target}"))
            connection.execute(text(f"ALTER TABLE {staging} RENAME TO {target}"))

    def abort(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {self._quote(self.staging)}"))


def open_writer(sink: Sink, if_exists: IfExists, database_url: str) -> Writer:
    """The writer of ``sink``, after refusing a destination that ``if_exists`` protects."""
    if sink.kind == "table":
        with transactional_engine(database_url).connect() as connection:
            exists = inspect(connection).has_table(sink.location)
        if exists and if_exists == "fail":
            raise InvalidInput(f"table {sink.location} exists; pass --if-exists replace or append")
        return TableWriter(database_url, sink.location, if_exists)
    dest = Path(sink.location)
    if if_exists == "append":
        raise InvalidInput(f"--if-exists append is for tables; {dest} is a file or folder")
    if dest.exists() and if_exists == "fail":
        raise InvalidInput(f"output {dest} exists; pass --if-exists replace")
    if sink.kind == "parquet_folder":
        return FolderWriter(dest)
    return FileWriter(dest, "parquet" if sink.kind == "parquet" else "csv")


# --- the job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOptions:
    """How a batch job runs."""

    rows_per_batch: int = DEFAULT_ROWS_PER_BATCH
    """Target rows of one block: one hash partition, scored in one ``predict_proba`` call."""
    max_actors: int | None = None
    """Most scoring actors (one CPU each); default: the cluster's CPUs."""
    if_exists: IfExists = "fail"
    """An existing destination: refuse it, replace it, or append to it (tables only)."""


@dataclass(frozen=True)
class BatchSummary:
    """What a batch job did."""

    rows: int
    markets: int
    seconds: float
    """The whole job: model download, reading, partitioning, scoring, writing."""
    partition_seconds: float
    """Of which until every market sat whole in one block (read and shuffle)."""
    model_name: str
    model_version: int
    destination: str
    partitions: int
    actors: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def score_batch(
    model: str | ModelPackage,
    source: Source,
    sink: Sink,
    *,
    database_url: str,
    options: BatchOptions | None = None,
) -> BatchSummary:
    """Score every selection of ``source`` with ``model`` and write them to ``sink``.

    Ray must be connected (``cluster.ray_runtime.connect``).

    Args:
        model: a registry reference (``name``, ``name@alias``, ``name/<version>``) or a package.
        source: the selections: ``event_key``, ``market_key`` and the model's feature columns.
        sink: where ``ID_COLUMNS`` present in the input, ``p_model``, ``model_name`` and
            ``model_version`` go.
        database_url: the database of ``sql:``/``table:`` inputs and outputs.
        options: batch size, actor pool and what to do with an existing destination.

    Raises:
        InvalidInput: the input lacks a needed column, or the destination exists.
        NotFound: the input, model, alias or version does not exist.
    """
    options = options or BatchOptions()
    start = time.perf_counter()
    database_url = absolute_database_url(database_url)
    package = model if isinstance(model, ModelPackage) else fetch_model(model)
    columns = input_columns(source, database_url)
    check_columns(columns, package.meta, source, f"{package.name} version {package.version}")
    writer = open_writer(sink, options.if_exists, database_url)
    try:
        keep = [c for c in ID_COLUMNS if c in columns]
        actors = options.max_actors or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        partitions = math.ceil(estimated_rows(source, database_url) / options.rows_per_batch)
        partitions = max(actors, partitions) if partitions > 1 else 1
        actors = min(actors, partitions)
        needed = list(dict.fromkeys([*keep, *package.meta.feature_columns]))
        dataset = read_source(source, needed, package.meta, database_url, blocks=partitions)
        # Materialised first: the hash shuffle is a barrier anyway, and scoring actors started
        # beside the read and shuffle tasks would hold the CPUs those need (on a small cluster
        # the job then hangs). The pool starts at its largest, because Ray Data's autoscaler
        # grows a pool only at 175% utilisation and within the operator's resource budget,
        # and an actor takes seconds to start; it shrinks as the blocks run out.
        blocks = market_complete(dataset, partitions).materialize()
        partitioned = time.perf_counter() - start
        scored = blocks.map_batches(
            MarketScorer,
            batch_size=None,  # a whole block, so whole markets
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=actors),
            fn_constructor_kwargs={
                "archive": ray.put(package.archive),
                "name": package.name,
                "version": package.version,
                "keep": keep,
            },
            num_cpus=1,
        )
        rows, markets = write_all(scored, writer)
    except BaseException:
        writer.abort()
        raise
    return BatchSummary(
        rows=rows,
        markets=markets,
        seconds=time.perf_counter() - start,
        partition_seconds=partitioned,
        model_name=package.name,
        model_version=package.version,
        destination=str(sink) if rows else "nothing (no rows)",
        partitions=partitions,
        actors=actors,
    )


def write_all(scored: Any, writer: Writer) -> tuple[int, int]:
    """Stream the scored blocks into ``writer`` and commit; the rows and markets written."""
    rows, market_hashes = 0, []
    for table in scored.iter_batches(batch_format="pyarrow", batch_size=None):
        if not table.num_rows:  # an empty hash partition
            continue
        writer.write(table)
        rows += table.num_rows
        keys = table.select(MARKET_KEYS).to_pandas()
        market_hashes.append(pd.util.hash_pandas_object(keys, index=False).to_numpy())
    writer.commit()
    markets = np.unique(np.concatenate(market_hashes)).size if market_hashes else 0
    return rows, int(markets)
