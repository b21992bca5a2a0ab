"""Reading this project's checkpoints safely, with one clear line when a path is not one.

    checkpoint = read_checkpoint("lightning_logs/version_0/checkpoints/last.ckpt")

Loaded with `weights_only=True`: a checkpoint from elsewhere cannot run code while it is read.
"""

from pathlib import Path

import torch

from linreg.errors import CheckpointError


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; any of them means "not a checkpoint"
        raise CheckpointError(f"{path}: not a checkpoint that torch can read ({type(e).__name__})") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not {"w", "b"} <= state.keys():
        raise CheckpointError(f"{path}: not a checkpoint of this project's model (it holds no w and b)")
    return checkpoint
