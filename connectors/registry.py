"""Which connector serves which ``source.type``; builds one from the config."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from auditor.config import AuditConfig, format_validation_error
from auditor.errors import ConfigError
from connectors.base import Connector

#: source.type → "module:Class" (imported lazily so a missing optional piece costs nothing)
CONNECTORS: dict[str, str] = {
    "demo": "connectors.demo:DemoConnector",
    "csv": "connectors.csv_source:CsvConnector",
    "salesforce": "connectors.salesforce.connector:SalesforceConnector",
    "salesforce_export": "connectors.salesforce.export:SalesforceExportConnector",
    "hubspot": "connectors.hubspot.connector:HubSpotConnector",
    "hubspot_export": "connectors.hubspot.export:HubSpotExportConnector",
    "warehouse": "connectors.warehouse.connector:WarehouseConnector",
}


def connector_class(type_name: str, origin: str = "<config>") -> type[Connector]:
    target = CONNECTORS.get(type_name)
    if target is None:
        raise ConfigError(
            f"{origin}: key `source.type`: unknown source type {type_name!r}; "
            f"allowed: {', '.join(sorted(CONNECTORS))}"
        )
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def build_connector(config: AuditConfig, env: Mapping[str, str] | None = None) -> Connector:
    raw = dict(config.source)
    type_name = str(raw.pop("type", ""))
    cls = connector_class(type_name, config.origin)
    try:
        options = cls.Options.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, config.origin, prefix="source.")) from None
    return cls(options, base_dir=Path(config.base_dir), env=env)
