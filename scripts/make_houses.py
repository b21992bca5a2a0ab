"""Write a small CSV of house prices, the book's motivating example: price from area and age.

    python scripts/make_houses.py houses.csv            # 500 rows: area (m²), age (years), price
    python scripts/train.py --data houses.csv --target price --max-epochs 30

price = 3000·area − 1500·age + 50000 + N(0, 10000²): the coefficients to find, in the data's own units.
Refuses to overwrite an existing file.
"""

import argparse
import csv
import sys
from pathlib import Path

import torch

TRUE_W = {"area": 3000.0, "age": -1500.0}
TRUE_B = 50000.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", help="the CSV file to write")
    p.add_argument("--rows", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    path = Path(args.path)
    if path.exists():
        sys.exit(f"make_houses.py: error: {path} exists; not overwriting it")
    g = torch.Generator().manual_seed(args.seed)
    area = 50 + 200 * torch.rand(args.rows, generator=g, dtype=torch.float64)  # m², 50 to 250
    age = 60 * torch.rand(args.rows, generator=g, dtype=torch.float64)  # years, 0 to 60
    noise = 10000 * torch.randn(args.rows, generator=g, dtype=torch.float64)
    price = TRUE_W["area"] * area + TRUE_W["age"] * age + TRUE_B + noise
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["area", "age", "price"])
        writer.writerows(
            zip(area.round(decimals=1).tolist(), age.round().tolist(), price.round().tolist(), strict=True)
        )
    print(f"wrote {args.rows} rows to {path}")


if __name__ == "__main__":
    main()
