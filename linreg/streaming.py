"""Data that does not fit in memory: the book's synthetic data as a stream, never materialized.

    dm = StreamingRegressionDataModule(num_examples=10**9, num_features=100, batch_size=1000)

- `normals(key, index, count)`: example i's numbers are a pure function of (key, i), made on the device of
  `index` for each batch: a counter-based generator. torch has no per-index generator (its CPU
  generator is sequential, its CUDA Philox is keyed by an offset into one stream), so this is Philox4x32-10
  (Random123's) in torch integer ops: the counter (i, block) encrypted under a 64-bit key of the seed
  and the stream, then Box–Muller. Key and counter are mixed non-linearly over ten rounds, so streams of
  different keys (training, held-out, other seeds) are unrelated: no example of one is an example of
  another. The 32×32-bit products are int64 multiplies that wrap modulo 2⁶⁴, both words in one int64.
- `feistel(key, index, n)`: a pseudorandom permutation of [0, n), evaluated per batch with no stored
  permutation: a 4-round keyed Feistel network on the smallest power of 4 ≥ n, cycle-walking the values
  that land outside [0, n). A new key each epoch gives a new order; every index appears once per epoch.
- `StreamingSampler` is `MinibatchSampler` with the permutation made per batch, so the DDP slicing and
  the mid-epoch resume carry over. The epoch-end evaluation reads a fixed held-out stream of `num_val`
  examples: the training set is too big to evaluate, and the output says so.

Streaming and in-memory runs draw different data for the same seed: each path is reproducible on its own.
"""

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from linreg.data import Gathered, SyntheticRegressionDataModule
from linreg.sampler import MinibatchSampler, derive_seed

MASK32 = 0xFFFFFFFF
GENERATE_EXAMPLES = 2048  # examples whose numbers are made at once (SyntheticStream): fastest on 2 CPU cores
TRAIN_STREAM, VAL_STREAM = -4, -5  # RNG streams of the seed (see linreg.data)


def mix32(x):
    """A 32-bit integer hash of values in [0, 2³²), bijective: xorshift-multiply rounds (the structure
    of Wellons' lowbias32). The Feistel network's round function; works on int64 tensors and Python ints."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32  # odd multipliers below 2³¹: products below 2⁶³, no int64 overflow
    x = x ^ (x >> 15)
    x = (x * 0x68E31DA5) & MASK32
    return x ^ (x >> 16)


# Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC'11), the
# counter-based generator of Random123, cuRAND and JAX: its round multipliers and key-schedule constants.
PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)


def philox(counter: tuple, key: tuple[int, int], rounds: int = 10) -> tuple[torch.Tensor, ...]:
    """Philox4x32: the 128-bit `counter` (four broadcastable int64 tensors or ints, 32-bit words) under the
    64-bit `key` (two 32-bit ints), as four tensors of 32-bit words.

    Each round multiplies two words (a non-linear mix of every bit), XORs the products' high words into
    the other two with the round's key, and swaps; the key advances by PHILOX_W. Ten rounds, Random123's
    default, is a wide margin over the seven that pass TestU01's BigCrush. tests/test_streaming.py checks
    Random123's known-answer vectors.

    In torch ops: a 32×32-bit product can reach 2⁶⁴, past int64's 2⁶³, and torch's int64 multiply wraps
    modulo 2⁶⁴ (two's complement, on the CPU and on CUDA; tested), so p = c·M holds the high word in bits
    32-63 and the low word in bits 0-31. The words live in int64 with stray bits above bit 31 where nothing
    reads them: the low word is p itself, the high word p >> 32. A word is masked to 32 bits only before it
    is multiplied, and at the end: ten tensor ops a round, the fewest that keep every product exact.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(rounds):
        p0 = c0 * PHILOX_M[0]  # (hi0, lo0) in one int64: c0 and c2 are clean 32-bit words here
        p1 = c2 * PHILOX_M[1]
        c0, c1 = ((p1 >> 32) ^ c1 ^ k0) & MASK32, p1  # hi1 ^ c1 ^ k0; lo1 in p1's bits 0-31
        c2, c3 = ((p0 >> 32) ^ c3 ^ k1) & MASK32, p0  # hi0 ^ c3 ^ k1; lo0 in p0's bits 0-31
        k0, k1 = (k0 + PHILOX_W[0]) & MASK32, (k1 + PHILOX_W[1]) & MASK32
    return c0, c1 & MASK32, c2, c3 & MASK32


def stream_key(seed: int, stream: int) -> tuple[int, int]:
    """The 64-bit Philox key of a stream of a seed: (a hash of both, the stream's number). Streams of one
    seed always differ in the second word; one stream of two seeds differs unless the 32-bit hashes meet."""
    return derive_seed(seed, stream), stream & MASK32


def normals(key: tuple[int, int], index: torch.Tensor, count: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`count` standard normal numbers for each example index: (len(index), count), a pure function of
    (key, index), made on index's device.

    Example i's numbers come from the Philox counters (i mod 2³², i div 2³², block, 0), block = 0, 1, ...:
    four 32-bit words a counter, four uniforms in (0, 1], and Box–Muller turns each pair into two normals.
    """
    blocks = -(-count // 4)
    counter = (
        (index & MASK32)[:, None],  # (n, 1)
        (index >> 32)[:, None],  # (n, 1)
        torch.arange(blocks, device=index.device)[None, :],  # (1, blocks)
        0,
    )
    bits = torch.stack(philox(counter, key), dim=-1)  # (n, blocks, 4), in [0, 2³²)
    uniform = (bits.to(dtype) + 0.5) * 2.0**-32  # in (0, 1], never 0: the log is finite
    radius = torch.sqrt(-2 * torch.log(uniform[..., 0::2]))  # (n, blocks, 2)
    angle = (2 * math.pi) * uniform[..., 1::2]
    z = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)  # (n, blocks, 2, 2)
    return z.reshape(len(index), 4 * blocks)[:, :count]


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
    """MinibatchSampler whose epoch order is `feistel(derive_seed(seed, epoch), position, n)`, made as it goes.

    The network runs on the positions of ~65,536 examples at a time (the next batches of this rank),
    not one batch: at batch 1000 its ~30 small tensor ops would otherwise cost more than the data.
    """

    LOOKAHEAD_EXAMPLES = 65536

    def batches(self, first: int) -> Iterator[torch.Tensor]:
        key = derive_seed(self.seed, self.epoch)
        chunk = max(1, self.LOOKAHEAD_EXAMPLES // self.batch_size)  # steps per evaluation of the network
        for start in range(first, len(self), chunk):
            bounds = [self.bounds(step) for step in range(start, min(start + chunk, len(self)))]
            positions = torch.cat([torch.arange(lo, hi, device=self.device) for lo, hi in bounds])
            order = feistel(key, positions, self.num_examples) if self.shuffle else positions
            yield from order.split([hi - lo for lo, hi in bounds])


class SyntheticStream(Dataset):
    """Example i: x_i = normals(key, i)[:d], y_i = x_i·w + b + noise · normals(key, i)[d]."""

    def __init__(
        self, key: tuple[int, int], true_w: torch.Tensor, true_b: float, noise: float, device: torch.device, dtype
    ) -> None:
        self.key, self.true_b, self.noise, self.dtype = key, true_b, noise, dtype
        self.true_w = true_w.to(device, dtype)  # (num_inputs,), on the device once: no copy per batch

    def __getitem__(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(index, slice):  # examples in order
            index = torch.arange(index.start, index.stop, device=self.true_w.device)
        # GENERATE_EXAMPLES at a time: Philox's int64 temporaries grow with the examples made at once, and a
        # block of K batches would otherwise hold them for all K (the numbers are the same either way)
        parts = [normals(self.key, part, len(self.true_w) + 1, self.dtype) for part in index.split(GENERATE_EXAMPLES)]
        X = torch.cat([z[:, :-1] for z in parts])  # (batch, num_inputs), contiguous for the matmuls of the step
        noise = torch.cat([z[:, -1] for z in parts])  # (batch,)
        y = X @ self.true_w + self.true_b + self.noise * noise  # (batch,)
        return X, y.reshape(-1, 1)


class StreamingRegressionDataModule(SyntheticRegressionDataModule):
    """The synthetic data of SyntheticRegressionDataModule (same arguments), streamed: nothing is stored
    but the batch. Its examples differ from the in-memory ones for the same seed."""

    evaluates_training_set = False  # the epoch-end evaluation is the held-out stream alone

    def setup(self, stage: str) -> None:
        hp, device, dtype = self.hparams, self.root_device(), self.data_dtype()
        self.train_stream = SyntheticStream(
            stream_key(hp.seed, TRAIN_STREAM), self.true_w, hp.true_b, hp.noise, device, dtype
        )
        self.val_stream = SyntheticStream(
            stream_key(hp.seed, VAL_STREAM), self.true_w, hp.true_b, hp.noise, device, dtype
        )

    def train_sampler(self) -> StreamingSampler:
        rank, world_size = self.ranks()
        hp = self.hparams
        return StreamingSampler(
            hp.num_examples,
            hp.batch_size,
            shuffle=hp.shuffle,
            seed=hp.seed,
            device=self.root_device(),
            num_replicas=world_size,
            rank=rank,
        )

    def train_dataloader(self) -> DataLoader:
        self.sampler = self.blocks(self.train_sampler())
        return DataLoader(Gathered(self.train_stream), sampler=self.sampler, batch_size=None)

    @property
    def num_held_out(self) -> int:
        return self.hparams.num_val

    def val_dataloader(self) -> list[DataLoader]:
        lo, hi = self.shard(self.hparams.num_val)  # this rank's shard of the held-out stream
        sampler = self.in_order_sampler(hi - lo)
        return [DataLoader(Shifted(self.val_stream, lo), sampler=sampler, batch_size=None)]


class Shifted(Dataset):
    """A stream read in order from example `start` on, with slices (the evaluation's chunks)."""

    def __init__(self, stream: SyntheticStream, start: int) -> None:
        self.stream, self.start = stream, start

    def __getitem__(self, chunk: slice) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stream[slice(self.start + chunk.start, self.start + chunk.stop)]
