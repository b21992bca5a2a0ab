"""Whether --data's Parquet would take more memory than the budget, and so is streamed (linreg-train).

    beyond_budget(args)    # True, with a line saying so, where the in-memory path would exceed it

In memory a run holds one float64 copy of the data and a standardized copy in the training dtype
(linreg.file_data): rows × columns × (8 + 4) bytes at the default float32. Parquet is read straight into
that float64 copy, a row group at a time, each row in its place in the split; a CSV file is read through
Arrow's table of it, then copied in the split's order: two float64 copies at its peak, rows × columns ×
(8 + 8) bytes (linreg.data_files.read_columns). The budget is --memory-budget GB, or half the machine's
RAM. A CSV file beyond it (its rows estimated from its size) is converted once to Parquet
(`streamed_path`), which then streams.
"""

import os

from lightning.pytorch.utilities import rank_zero_only

from linreg.data_files import bytes_per_row, is_parquet, read_header
from linreg.parquet_parts import ParquetParts, is_parts


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def beyond_budget(args) -> bool:
    """Whether --data would take more than the budget in memory (a line says so where it would)."""
    if args.streaming:
        return False
    parquet = is_parts(args.data) or is_parquet(args.data)
    if parquet:
        parts = ParquetParts.open(args.data)
        rows, columns = parts.num_rows, (len(args.features) if args.features else len(parts.names) - 1) + 1
    else:  # a CSV file: its rows estimated from its size and its first lines' length
        header = read_header(args.data)
        rows = os.path.getsize(args.data) // bytes_per_row(args.data)
        columns = (len(args.features) if args.features else len(header) - 1) + 1
    training = 8 if str(args.precision).startswith("64") else 4  # bytes per cell of the standardized copy
    need = rows * columns * (8 + max(training, 0 if parquet else 8))  # the float64 copy, and the larger besides
    budget = args.memory_budget * 1e9 if args.memory_budget is not None else physical_memory() / 2
    if need <= budget:
        return False
    rank_zero_only(print)(
        f"streaming: {args.data} would take {need / 1e9:.3g} GB in memory, above the budget of {budget / 1e9:.3g} GB "
        "(--memory-budget)"
    )
    return True


def streamed_path(args) -> str:
    """What streams: Parquet as given, or a CSV file converted once to Parquet (linreg.csv_to_parquet)."""
    if is_parts(args.data) or is_parquet(args.data):
        return args.data
    from linreg.csv_to_parquet import converted

    header = read_header(args.data)
    features = args.features or [name for name in header if name != args.target]
    return str(converted(args.data, [*features, args.target], say=rank_zero_only(print)))
