"""Reading export files without following links out of the export folder (SECURITY.md).

An export folder comes from someone else (a client's zip, a shared drive). A symbolic link in
it pointing elsewhere (``Opportunity.csv -> ~/.ssh/id_rsa``) would put that file's content into
the reports; such a link is refused with a message naming it. Links that stay inside the
folder (a "latest" link to a dated file) are fine.
"""

from __future__ import annotations

import os
from pathlib import Path

from auditor.errors import SourceDataError


def contained(path: Path, folder: Path | None = None) -> Path:
    """``path`` if it exists and resolves inside ``folder`` (default: its own folder).

    A missing file is returned as it is (the reader reports it)."""
    path = Path(path)
    root = Path(os.path.realpath(folder if folder is not None else path.parent))
    if not path.exists() and not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))
    if real != root and not real.is_relative_to(root):
        raise SourceDataError(
            f"{path}: a symbolic link to {real}, outside the export folder {root}; links out "
            "of an export folder are not followed. Copy the file into the folder instead"
        )
    return path
