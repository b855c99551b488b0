"""Fingerprint values are stored in users' history files: they must never change.

The values below were computed by the engine of commit b12a0ae (the version whose history files
exist); any change to how fingerprints are computed must reproduce them exactly.
"""

from __future__ import annotations

import pandas as pd

from auditor.engine import fingerprints

KNOWN = [
    ("demo", "QL01", "OPP-0000001", "dce3f988503b76db"),
    ("demo", "DQ04", "OPP-0000002", "d6445bd5ec9dd083"),
    ("demo", "CD01", "OPP-0000003", "ce420b4f656fdfb4"),
    ("salesforce-prod", "CD01", "006Hs00001abcDEF", "5447107036284304"),
    ("hubspot", "FU03", "1234567890", "cf9dd7a64da3ec4f"),
    ("crm", "ST04", "Ünïcødé – 42", "32a5a6f863a0300f"),
]


def test_fingerprints_keep_the_values_stored_in_history_files() -> None:
    for source, code, record, expected in KNOWN:
        got = fingerprints(source, pd.Series([code]), pd.Series([record]))
        assert got.tolist() == [expected], (source, code, record)


def test_fingerprints_of_many_findings_at_once_equal_one_by_one() -> None:
    demo = [k for k in KNOWN if k[0] == "demo"]
    codes = pd.Series([k[1] for k in demo], index=[10, 11, 12])
    got = fingerprints("demo", codes, pd.Series([k[2] for k in demo], index=[10, 11, 12]))
    assert got.tolist() == [k[3] for k in demo]
    assert list(got.index) == [10, 11, 12]
    assert fingerprints("demo", pd.Series([], dtype=object), pd.Series([], dtype=object)).empty
