"""crm-hygiene-auditor core: stage model, Snapshot, config, engine, metrics, history, CLI."""

__version__ = "0.1.0"
