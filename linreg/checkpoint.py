"""Reading this project's checkpoints safely, and writing them so that they are never half-written.

    checkpoint = read_checkpoint("lightning_logs/version_0/checkpoints/last.ckpt")
    atomic_save(checkpoint, "lightning_logs/version_0/checkpoints/last-step.ckpt")

Loaded with `weights_only=True`: a checkpoint from elsewhere cannot run code while it is read. Written to a
temporary file beside the target, flushed to the disk, then renamed over it (`os.replace`, atomic on
POSIX): a kill, a power loss or a full disk in the middle leaves the previous file whole. torch only, no
Lightning (linreg.fault_tolerance.AtomicCheckpointIO hands Lightning's checkpoints to `atomic_save`).
"""

import os
import tempfile
from pathlib import Path

import torch

from linreg.errors import CheckpointError, StorageError

UMASK = os.umask(0o022)  # the process's umask (os has no getter): read it, put it back
os.umask(UMASK)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; any of them means "not a checkpoint"
        raise CheckpointError(f"{path}: not a checkpoint that torch can read ({type(e).__name__})") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    parameters = ({"w", "b"}, {"net.0.weight"})  # the scratch model's, or the concise one's (its bias, if any)
    if not isinstance(state, dict) or not any(names <= state.keys() for names in parameters):
        raise CheckpointError(f"{path}: not a checkpoint of this project's model (it holds no w and b)")
    diverged = (checkpoint.get("linreg") or {}).get("diverged_at_step")
    finite = all(bool(torch.isfinite(value).all()) for value in state.values() if torch.is_tensor(value))
    if diverged is not None or not finite:
        when = f" at step {diverged}" if diverged is not None else ""
        raise CheckpointError(
            f"{path}: the parameters of a run that diverged{when}, not a model; train again with a smaller --lr"
        )
    return checkpoint


def atomic_save(obj, path: str | Path) -> None:
    """torch.save(obj, path), all or nothing; StorageError (one line) when the disk or folder refuses."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())  # on the disk before the rename makes it the checkpoint
            os.chmod(temporary, 0o666 & ~UMASK)  # mkstemp's file is private (0600); a checkpoint is not
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as e:  # a full disk, a folder not writable: the previous checkpoint is still whole
        raise StorageError(f"cannot write the checkpoint {path}: {e.strerror or e}") from None
