"""What identifies a data file, cheaply: enough to refuse a resume on data that changed since the checkpoint.

    print_ = fingerprint("houses.csv", rows=500)
    {"path": "houses.csv", "size": 17733, "mtime_ns": ..., "rows": 500, "ends": "9f2c..."}
    changed(saved, print_)    # None, or what differs, for one line

`ends` is a SHA-256 of the file's first and last 64 KiB and its size: a file moved or copied elsewhere has
the same, a file edited in place almost never does (an edit inside the middle of a file larger than 128 KiB
that keeps its size, its row count and its modification time is the one change this misses). The same path
is compared by its modification time too; another path by its content alone, so that a moved file resumes.
"""

import hashlib
import os
from pathlib import Path

END = 65536  # bytes hashed at each end


def fingerprint(path: str | Path, rows: int) -> dict:
    stat = os.stat(path)
    digest = hashlib.sha256(str(stat.st_size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(END))
        if stat.st_size > END:
            f.seek(max(END, stat.st_size - END))
            digest.update(f.read(END))
    return {
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "rows": rows,
        "ends": digest.hexdigest(),
    }


def changed(saved: dict, now: dict) -> str | None:
    """What differs between the file a checkpoint was trained on and the one given now, or None."""
    for key, what in (("rows", "rows"), ("size", "bytes")):
        if saved[key] != now[key]:
            return f"{saved[key]} {what} then, {now[key]} now"
    if saved["ends"] != now["ends"]:
        return "its content differs"
    if saved["path"] == now["path"] and saved["mtime_ns"] != now["mtime_ns"]:
        return "it was modified since"
    return None
