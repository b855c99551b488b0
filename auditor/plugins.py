"""Where rules and connectors come from: entry points, for built-ins and third parties alike.

The kernel knows no rule and no connector by name. Built-in rules and connectors are registered
by this distribution's ``pyproject.toml`` in the same entry-point groups a third-party
distribution uses, and read here through ``importlib.metadata``:

- ``crm_hygiene_auditor.rules``: each entry point loads a :class:`~auditor.rule.Rule` subclass,
  or a list / tuple of them. Rule metadata is checked when the class is defined
  (``Rule.__init_subclass__``), so a plugin with bad metadata fails while loading.
- ``crm_hygiene_auditor.connectors``: the entry point's name is the ``source.type``, its value a
  connector class (``Options`` pydantic model, ``pull(since=...)``, ``type_name``,
  ``source_name``; contract in ``connectors/base.py``).

Order is stable: this distribution's entry points first (the built-in catalogue keeps its own
order), then other distributions' sorted by distribution and entry-point name.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from auditor.errors import AuditorError, ConfigError
from auditor.rule import Rule
from auditor.suggest import did_you_mean

RULES_GROUP = "crm_hygiene_auditor.rules"
CONNECTORS_GROUP = "crm_hygiene_auditor.connectors"
DISTRIBUTION = "crm-hygiene-auditor"

#: connectors registered in-process (tests, benchmarks): source.type → "module:Class" or class
EXTRA_CONNECTORS: dict[str, Any] = {}


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) or ""
    return re.sub(r"[-_.]+", "-", name).lower()


def _ordered(group: str) -> list[EntryPoint]:
    """The group's entry points, ours first, without the duplicates a double install gives."""
    seen: set[tuple[str, str]] = set()
    ours, theirs = [], []
    for ep in entry_points(group=group):
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        (ours if _dist_name(ep) == DISTRIBUTION else theirs).append(ep)
    theirs.sort(key=lambda ep: (_dist_name(ep), ep.name))
    return ours + theirs


def _load_rule_entry(ep: EntryPoint) -> list[type[Rule]]:
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must say which one it is
        raise AuditorError(f"rule plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
    items = obj if isinstance(obj, list | tuple) else [obj]
    for item in items:
        if not (isinstance(item, type) and issubclass(item, Rule)):
            raise AuditorError(
                f"rule plugin {ep.name!r} ({ep.value}) must provide Rule subclasses, got {item!r}"
            )
    return list(items)


def rule_classes(include_plugins: bool = True) -> list[type[Rule]]:
    """Every registered rule class, built-ins first; a code registered twice is an error."""
    eps = _ordered(RULES_GROUP)
    if not any(_dist_name(ep) == DISTRIBUTION for ep in eps):
        raise AuditorError(
            f"no built-in rules found in the entry-point group {RULES_GROUP!r}: "
            "is crm-hygiene-auditor installed? (pip install -e .)"
        )
    rules: list[type[Rule]] = []
    for ep in eps:
        if include_plugins or _dist_name(ep) == DISTRIBUTION:
            rules += _load_rule_entry(ep)
    seen: dict[str, type[Rule]] = {}
    for r in rules:
        if r.code in seen and seen[r.code] is not r:
            raise AuditorError(
                f"rule code {r.code} is registered twice ({seen[r.code].__module__}."
                f"{seen[r.code].__name__} and {r.__module__}.{r.__name__})"
            )
        seen[r.code] = r
    return list(seen.values())


def connector_targets() -> dict[str, Any]:
    """source.type → entry point (or in-process registration), in discovery order."""
    out: dict[str, Any] = {}
    for ep in _ordered(CONNECTORS_GROUP):
        out.setdefault(ep.name, ep)
    out.update(EXTRA_CONNECTORS)
    return out


def connector_class(type_name: str, origin: str = "<config>") -> type:
    """The connector class registered for ``source.type`` = ``type_name``."""
    targets = connector_targets()
    target = targets.get(type_name)
    if target is None:
        raise ConfigError(
            f"{origin}: key `source.type`: unknown source type {type_name!r}"
            f"{did_you_mean(type_name, targets)}; allowed: {', '.join(sorted(targets))}"
        )
    try:
        if isinstance(target, EntryPoint):
            cls = target.load()
        elif isinstance(target, str):
            module, _, attr = target.partition(":")
            cls = getattr(importlib.import_module(module), attr)
        else:
            cls = target
    except Exception as exc:
        raise AuditorError(f"connector {type_name!r} failed to load: {exc}") from exc
    for attr in ("Options", "pull"):
        if not hasattr(cls, attr):
            raise AuditorError(
                f"connector {type_name!r} ({cls!r}) is not a connector: it has no `{attr}`"
            )
    return cls
