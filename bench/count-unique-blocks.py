#!/usr/bin/python3
"""Count the 4 KiB blocks of one or more images as a deduplicating volume
would see them, written one after the other at 4 KiB-aligned offsets:
all-zero blocks cost nothing, and each distinct non-zero content is
stored once.  The unique non-zero count is the floor for VDO's
data_blocks_used after writing the same images.

    bench/count-unique-blocks.py [--json] IMG...

Prints a table (per image: blocks, zero, non-zero, unique non-zero within
the image, and "new": non-zero contents no earlier image had) and the
totals; with --json, also a last line of JSON with the same figures.
Holes of sparse images are skipped with SEEK_DATA rather than read.
A last partial block is counted as a block padded with zeros.
"""

import argparse
import hashlib
import json
import os
import sys

BLOCK = 4096
CHUNK = 256 * BLOCK
ZERO = bytes(BLOCK)


def data_extents(fd, size):
    """(start, end) ranges holding data, aligned out to BLOCK; holes
    between them read as zeros, so they are counted without reading."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        start -= start % BLOCK
        end = min(size, -(-end // BLOCK) * BLOCK)
        yield start, end
        pos = end


def count(path, seen):
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            # A block device: fstat gives no size.
            size = os.lseek(fd, 0, os.SEEK_END)
        blocks = -(-size // BLOCK)
        try:
            extents = list(data_extents(fd, size))
        except OSError:  # no SEEK_DATA here: read everything
            extents = [(0, size)]
        nonzero = 0
        mine = set()
        new = 0
        for start, end in extents:
            os.lseek(fd, start, os.SEEK_SET)
            pos = start
            while pos < end:
                buf = os.read(fd, min(CHUNK, end - pos))
                if not buf:
                    break
                pos += len(buf)
                if len(buf) % BLOCK:
                    buf += bytes(BLOCK - len(buf) % BLOCK)
                view = memoryview(buf)
                for off in range(0, len(buf), BLOCK):
                    block = view[off:off + BLOCK]
                    if block == ZERO:
                        continue
                    nonzero += 1
                    digest = hashlib.blake2b(block, digest_size=16).digest()
                    mine.add(digest)
                    if digest not in seen:
                        seen.add(digest)
                        new += 1
        return {"image": path, "blocks": blocks, "zero": blocks - nonzero,
                "nonzero": nonzero, "unique_nonzero": len(mine), "new": new}
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true",
                        help="also print the figures as a last JSON line")
    parser.add_argument("images", nargs="+", metavar="IMG")
    args = parser.parse_args()

    seen = set()
    rows = [count(path, seen) for path in args.images]
    total = {key: sum(r[key] for r in rows)
             for key in ("blocks", "zero", "nonzero")}
    total["unique_nonzero"] = len(seen)

    fmt = "%-40s %10s %10s %10s %10s %10s"
    print(fmt % ("image (4 KiB blocks)", "blocks", "zero", "non-zero",
                 "unique", "new"))
    for r in rows:
        name = r["image"] if len(r["image"]) <= 40 else \
            "..." + r["image"][-37:]
        print(fmt % (name, r["blocks"], r["zero"], r["nonzero"],
                     r["unique_nonzero"], r["new"]))
    print(fmt % ("total", total["blocks"], total["zero"], total["nonzero"],
                 total["unique_nonzero"], ""))
    if total["nonzero"]:
        print("unique non-zero blocks: %d (%.1f MiB); %.1f%% of the non-zero"
              " blocks are duplicates" %
              (total["unique_nonzero"], total["unique_nonzero"] * BLOCK / 2**20,
               100.0 * (1 - total["unique_nonzero"] / total["nonzero"])))
    if args.json:
        total["images"] = rows
        print(json.dumps(total))


if __name__ == "__main__":
    sys.exit(main())
