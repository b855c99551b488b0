"""Connectors: pull a CRM (or its files) into a :class:`auditor.snapshot.Snapshot`.

Each connector keeps transport (auth, paging, retries, call counting) apart from field mapping
(which is data: dicts from CRM field to Snapshot column). See ``connectors.registry``.
"""
