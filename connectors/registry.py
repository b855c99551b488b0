"""Builds the configured connector. Which class serves which ``source.type`` comes from the
``crm_hygiene_auditor.connectors`` entry points (see ``auditor.plugins``); the built-ins are
registered in pyproject.toml like any third-party connector.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from auditor.config import AuditConfig, format_validation_error
from auditor.errors import ConfigError
from auditor.plugins import EXTRA_CONNECTORS, connector_class
from connectors.base import Connector

#: in-process registrations (tests, benchmarks): source.type → "module:Class"
CONNECTORS = EXTRA_CONNECTORS

__all__ = ["CONNECTORS", "build_connector", "connector_class"]


def build_connector(config: AuditConfig, env: Mapping[str, str] | None = None) -> Connector:
    raw = dict(config.source)
    type_name = str(raw.pop("type", ""))
    cls = connector_class(type_name, config.origin)
    try:
        options = cls.Options.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, config.origin, prefix="source.", model=cls.Options)
        ) from None
    return cls(options, base_dir=Path(config.base_dir), env=env)
