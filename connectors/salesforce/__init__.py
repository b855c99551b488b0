"""Salesforce: live connector (REST / Bulk API 2.0) and data-export connector.

Modules: ``fields`` (field mapping as data), ``normalise`` (raw records → Snapshot, shared by
every path), ``transport`` (auth, retries, call counting), ``bulk`` (Bulk API 2.0 jobs),
``connector`` (live), ``export`` (Data Loader / weekly export CSVs).
"""
