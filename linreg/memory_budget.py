"""Whether --data's Parquet would take more memory than the budget, and so is streamed (linreg-train).

    beyond_budget(args)    # True, with a line saying so, where the in-memory path would exceed it

In memory a run holds one float64 copy of the data and a standardized copy in the training dtype
(linreg.file_data): rows × (columns) × (8 + 4) bytes at the default float32. The budget is --memory-budget
GB, or half the machine's RAM. A CSV file is not streamed: it has no row groups to read a window at a time.
"""

import os

from lightning.pytorch.utilities import rank_zero_only

from linreg.data_files import is_parquet
from linreg.parquet_parts import ParquetParts, is_parts


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def beyond_budget(args) -> bool:
    if args.streaming or not (is_parts(args.data) or is_parquet(args.data)):
        return False
    parts = ParquetParts.open(args.data)
    columns = (len(args.features) if args.features else len(parts.names) - 1) + 1
    need = parts.num_rows * columns * (8 + (8 if str(args.precision).startswith("64") else 4))
    budget = args.memory_budget * 1e9 if args.memory_budget is not None else physical_memory() / 2
    if need <= budget:
        return False
    rank_zero_only(print)(
        f"streaming: {args.data} would take {need / 1e9:.3g} GB in memory, above the budget of {budget / 1e9:.3g} GB "
        "(--memory-budget)"
    )
    return True
