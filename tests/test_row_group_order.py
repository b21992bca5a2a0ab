"""The streamed order's pieces, each against its definition (issue 27): which lane each position of an
epoch is in, and which of a window's rows each position takes. RowGroupSampler computes both by
arithmetic; here they are computed the slow, obvious way."""

import random

import torch

from linreg.file_stream import LANES, RowGroupSampler, split_rows
from linreg.parquet_parts import Group
from linreg.sampler import derive_seed


class Parts:  # what RowGroupSampler reads of a ParquetParts: its groups
    def __init__(self, sizes: list[int]) -> None:
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.groups = [Group(0, i, start, n) for i, (start, n) in enumerate(zip(starts, sizes, strict=True))]


def lanes(sampler: RowGroupSampler, start: int, n: int) -> torch.Tensor:
    """The definition: position p's slot in its global batch is p mod G, and slot s is in lane ⌊s·LANES/G⌋."""
    G = sampler.batch_size * sampler.num_replicas
    return ((torch.arange(start, start + n) % G) * LANES) // G


def window(sampler: RowGroupSampler, key: int, w: int, groups: list[int], start: int) -> torch.Tensor:
    """The definition: the window's rows cut into LANES runs in order, each run shuffled by its own seed;
    lane ℓ's positions, in increasing order, take run ℓ."""
    rows = torch.cat([split_rows(sampler.parts.groups[g], sampler.key, sampler.threshold)[0] for g in groups])
    of_position = lanes(sampler, start, len(rows))
    order, begin = torch.empty_like(rows), 0
    for lane in range(LANES):
        count = int((of_position == lane).sum())
        seed = derive_seed(derive_seed(key, -1 - w), lane)
        run = rows[begin : begin + count][torch.randperm(count, generator=torch.Generator().manual_seed(seed))]
        order[of_position == lane] = run  # lane ℓ's positions, in increasing order
        begin += count
    return order


def test_lane_counts_and_windows_are_their_definitions_for_any_batch_processes_and_start():
    # catches: a lane's first slot rounded down rather than up, a window starting mid-batch placed as if
    # at a batch boundary, a lane's run written into its neighbour's slots, a rank-dependent order
    rng = random.Random(0)
    for trial in range(60):
        parts = Parts([rng.randint(1, 300) for _ in range(rng.randint(1, 10))])
        threshold = rng.choice([0, 2**30, 2**31])
        counts = torch.tensor([len(split_rows(g, 7, threshold)[0]) for g in parts.groups])
        batch_size, world_size = rng.choice([1, 3, 7, 10, 64]), rng.choice([1, 2, 3])
        for rank in range(world_size):
            sampler = RowGroupSampler(int(counts.sum()), batch_size, shuffle=True, seed=trial, num_replicas=world_size,
                                      rank=rank, parts=parts, counts=counts, key=7, threshold=threshold,
                                      window_rows=rng.choice([1, 100, 500]))  # fmt: skip
            key, start = derive_seed(trial, 0), 0
            for w, groups in enumerate(sampler.windows(key)):
                n = int(counts[groups].sum())
                assert (
                    sampler.lane_counts(start, n) == torch.bincount(lanes(sampler, start, n), minlength=LANES).tolist()
                )
                assert torch.equal(sampler.window(key, w, groups, start), window(sampler, key, w, groups, start))
                start += n
