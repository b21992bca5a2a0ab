"""The order of a streamed epoch, made a window at a time with no stored permutation (see linreg.streaming).

    sampler = StreamingSampler(10**9, batch_size=1000, seed=0, prefetch=stream.prefetch)

Each epoch the data's chunks (CHUNK = 1024 examples each) come in a pseudorandom order,
`feistel(key, position, n)`: a keyed 4-round Feistel network on the smallest power of 4 ≥ n,
cycle-walking the values that land outside [0, n), a new key each epoch. The examples of WINDOW = 16
consecutive chunks of that order are then shuffled together (`torch.randperm` of 16,384). Every example
appears exactly once per epoch, in a new order each epoch; a minibatch mixes ~16 chunks, and which chunks
share a window changes every epoch. The short last chunk, if any, always comes last.

`StreamingSampler` is `MinibatchSampler` with this order, so the DDP slicing and the mid-epoch resume
carry over. It tells the data which chunks the next window needs (`prefetch`) one window ahead of use.
"""

import math
from collections.abc import Callable, Iterator

import torch

from linreg.sampler import MinibatchSampler, derive_seed

MASK32 = 0xFFFFFFFF
CHUNK = 1024  # examples per generator call (linreg.streaming)
WINDOW = 16  # chunks whose examples are shuffled together


def mix32(x):
    """A 32-bit integer hash of values in [0, 2³²), bijective: xorshift-multiply rounds (the structure
    of Wellons' lowbias32). The Feistel network's round function; works on int64 tensors and Python ints."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32  # odd multipliers below 2³¹: products below 2⁶³, no int64 overflow
    x = x ^ (x >> 15)
    x = (x * 0x68E31DA5) & MASK32
    return x ^ (x >> 16)


def half_bits(n: int) -> int:
    """The smallest h ≥ 1 with 4^h ≥ n, in exact integer arithmetic (math.log2 rounds above 2⁵⁰)."""
    return max(1, -(-(n - 1).bit_length() // 2))


def feistel(key: int, index: torch.Tensor, n: int, rounds: int = 4) -> torch.Tensor:
    """The positions `index` (values in [0, n)) through a keyed pseudorandom permutation of [0, n)."""
    half = half_bits(n)  # the network permutes [0, 4^half) ⊇ [0, n)
    mask = (1 << half) - 1
    round_keys = [mix32(derive_seed(key, r)) for r in range(rounds)]  # Python ints: no device round trip

    def permute(x: torch.Tensor) -> torch.Tensor:
        left, right = x >> half, x & mask
        for k in round_keys:
            left, right = right, left ^ (mix32(right ^ k) & mask)
        return (left << half) | right

    out = permute(index)
    outside = out >= n
    while outside.any():  # cycle-walking: a bijection of the bigger set, walked until back inside [0, n)
        out[outside] = permute(out[outside])
        outside = out >= n
    return out


class StreamingSampler(MinibatchSampler):
    """MinibatchSampler whose epoch order is made a window at a time (see the module's docstring), with
    `prefetch(chunks)` called for each window's chunks one window ahead of use.

    The order is a function of (seed, epoch, position) alone, so the DDP slicing and the mid-epoch resume
    of MinibatchSampler carry over; under DDP each rank makes the whole of the windows it reads from.
    """

    def __init__(self, *args, prefetch: Callable[[list[int]], None] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prefetch = prefetch

    def chunks(self, key: int, first: int, last: int) -> torch.Tensor:
        """The chunks at positions [first, last) of the epoch's chunk order: (last - first,) int64."""
        positions = torch.arange(first, last)
        full = self.num_examples // CHUNK  # the short last chunk, if any, stays last
        if self.shuffle and full > 0:
            inside = positions < full
            positions[inside] = feistel(key, positions[inside], full)
        return positions

    def window(self, key: int, w: int, chunks: torch.Tensor) -> torch.Tensor:
        """The example indices of window w, made of these chunks, in the epoch's order: (up to WINDOW · CHUNK,)."""
        size = min(self.num_examples, (w + 1) * WINDOW * CHUNK) - w * WINDOW * CHUNK
        if self.shuffle:  # negative keys: apart from the Feistel network's round keys 0-3
            slots = torch.randperm(size, generator=torch.Generator().manual_seed(derive_seed(key, -1 - w)))
        else:
            slots = torch.arange(size)
        return chunks[slots // CHUNK] * CHUNK + slots % CHUNK

    def batches(self, first: int) -> Iterator[torch.Tensor]:
        key = derive_seed(self.seed, self.epoch)
        examples, num_chunks = WINDOW * CHUNK, math.ceil(self.num_examples / CHUNK)
        windows: dict[int, torch.Tensor] = {}  # the windows this rank reads from now
        for step in range(first, len(self)):
            lo, hi = self.bounds(step)
            parts = []
            touched = range(lo // examples, (hi - 1) // examples + 1) if hi > lo else range(0)  # windows of [lo, hi)
            for w in touched:
                if w not in windows:
                    chunks = self.chunks(key, w * WINDOW, min((w + 2) * WINDOW, num_chunks))  # windows w, w + 1
                    if self.prefetch is not None:  # w's are usually asked for already, with w - 1
                        self.prefetch(chunks.tolist())
                    windows[w] = self.window(key, w, chunks[:WINDOW]).to(self.device)
                    for old in [old for old in windows if old < w]:
                        del windows[old]
                start = w * examples
                parts.append(windows[w][max(lo, start) - start : min(hi, start + examples) - start])
            yield torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64, device=self.device)
