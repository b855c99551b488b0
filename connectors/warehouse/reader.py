"""Reading warehouse tables through SQLAlchemy Core: only the columns asked for, filters in SQL.

Tables are reflected once (names matched case-insensitively) and rows come back as text in the
shape the CRM APIs use (ISO timestamps in UTC, ``true``/``false``), so the API connectors'
parsers read them unchanged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from auditor.errors import ConfigError, ConnectorError, SourceDataError
from auditor.secrets import read_secret
from auditor.snapshot import STR


def build_url(url: str, password_env: str | None, env: Mapping[str, str]) -> URL:
    """The SQLAlchemy URL with the password from the environment (never from the config)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"key `source.url`: not a SQLAlchemy URL ({exc})") from None
    if parsed.password:
        raise ConfigError(
            "key `source.url` contains a password; remove it and name an environment variable "
            "holding it in `source.password_env`"
        )
    if password_env:
        parsed = parsed.set(password=read_secret(password_env, "source.password_env", env))
    return parsed


class Warehouse:
    """One connection's worth of reflected tables in one schema."""

    def __init__(self, url: URL, schema: str | None) -> None:
        self.url, self.schema = url, schema
        self.shown = url.render_as_string(hide_password=True)
        try:
            self.engine = sa.create_engine(url)
            self.conn = self.engine.connect()
            self._names = {n.casefold(): n for n in
                           sa.inspect(self.conn).get_table_names(schema=schema)}
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise ConfigError(f"key `source.url`: no SQLAlchemy driver for {url.drivername!r} "
                              f"({exc}); install the dialect package") from None
        except SQLAlchemyError as exc:
            raise ConnectorError(f"warehouse {self.shown}: cannot connect: "
                                 f"{type(exc.orig or exc).__name__}: {exc.orig or exc}") from None
        self._tables: dict[str, sa.TableClause] = {}
        self.queries: int = 0

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def where(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    def has_table(self, name: str) -> bool:
        return name.casefold() in self._names

    def table(self, name: str) -> sa.TableClause:
        real = self._names.get(name.casefold())
        if real is None:
            raise SourceDataError(
                f"warehouse {self.shown}: table {self.where(name)} not found "
                f"(tables there: {', '.join(sorted(self._names.values())[:20]) or 'none'}); "
                "check source.layout, source.schema and source.tables")
        if real not in self._tables:
            # columns only: full reflection (keys, indexes) is slow and some dialects lack it
            cols = sa.inspect(self.conn).get_columns(real, schema=self.schema)
            self._tables[real] = sa.table(real, *(sa.column(c["name"], c["type"]) for c in cols),
                                          schema=self.schema)
        return self._tables[real]

    def columns(self, table: sa.TableClause) -> dict[str, sa.Column[Any]]:
        return {c.name.casefold(): c for c in table.columns}

    def column(self, table: sa.TableClause, name: str, *, required: bool = False,
               what: str = "") -> sa.Column[Any] | None:
        col = self.columns(table).get(name.casefold())
        if col is None and required:
            raise SourceDataError(
                f"warehouse table {self.where(table.name)}: column {name} ({what}) is missing; "
                "is source.layout right for this table?")
        return col

    def read(self, table: sa.TableClause, wanted: Mapping[str, str],
             where: sa.ColumnElement[bool] | None = None) -> pd.DataFrame:
        """``wanted``: output name → column name; missing columns are left out of the frame."""
        cols = {out: self.column(table, col) for out, col in wanted.items()}
        present = {out: c for out, c in cols.items() if c is not None}
        stmt = sa.select(*(c.label(f"c{i}") for i, c in enumerate(present.values())))
        if where is not None:
            stmt = stmt.where(where)
        try:
            result = self.conn.execute(stmt)
            rows = result.fetchall()
        except SQLAlchemyError as exc:
            raise ConnectorError(f"warehouse {self.shown}: reading {self.where(table.name)} "
                                 f"failed: {exc.orig or exc}") from None
        self.queries += 1
        # object columns keep each value's Python type (an integer id stays "501", not "501.0")
        values = list(zip(*rows, strict=True)) if rows else [()] * len(present)
        return pd.DataFrame({k: as_api_text(pd.Series(v, dtype=object))
                             for k, v in zip(present, values, strict=True)})

    def after(self, col: sa.Column[Any], since: dt.datetime) -> sa.ColumnElement[bool]:
        """``col > since``, comparing as timestamps even where a loader stored text."""
        since = since.astimezone(dt.UTC)
        if isinstance(col.type, sa.String | sa.Text):
            return sa.cast(col, sa.DateTime(timezone=True)) > since
        if isinstance(col.type, sa.DateTime) and not col.type.timezone:
            return col > since.replace(tzinfo=None)  # loaders write UTC wall time
        return col > since


def _iso(ts: pd.Series) -> pd.Series:
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    text = ts.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return text.astype(STR).where(ts.notna())


def as_api_text(s: pd.Series) -> pd.Series:
    """A column as the API would send it: text, NA for NULL (vectorized per type)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return _iso(s)
    if pd.api.types.is_bool_dtype(s):
        return s.map({True: "true", False: "false"}).astype(STR)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(STR).where(s.notna())
    sample = s.dropna()
    if sample.empty:
        return s.astype(STR)
    first = sample.iloc[0]
    if isinstance(first, dt.datetime):
        return _iso(pd.to_datetime(s, utc=first.tzinfo is not None))
    if isinstance(first, dt.date):
        return pd.to_datetime(s).dt.strftime("%Y-%m-%d").astype(STR)
    if isinstance(first, bool):
        return s.map({True: "true", False: "false"}).astype(STR)
    if isinstance(first, decimal.Decimal | float):
        # a whole number prints without ".0": an id landed as a float must still match
        num = pd.to_numeric(s).astype("Float64")
        whole = (num % 1 == 0).fillna(False).astype(bool) & (num.abs() < 2**53).fillna(False)
        text = num.astype(STR)
        text[whole] = num[whole].astype("Int64").astype(STR)
        return text.where(num.notna())
    if isinstance(first, list | dict):  # JSON columns decoded by the driver
        return s.map(json.dumps, na_action="ignore").astype(STR)
    return s.astype(STR)
