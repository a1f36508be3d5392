#!/usr/bin/env python3
"""A second data set cut from a folder-per-class zip: other classes, another class count, imbalanced.

    python benchmarks/class_subset.py --source ../shared/data/cifar10/cifar10-jpeg.zip \\
        --classes automobile,bird,cat,dog,frog,truck --largest 4000 --imbalance 8 \\
        --out /tmp/cifar6-imbalanced.zip

A preset must not be tuned to one data set. This writes the set a preset's defaults are
checked on before it is trusted on sets held back: from a zip laid out as
``train/<class>/*`` and ``test/<class>/*`` (the shared CIFAR-10 copy, for example), the
named classes only, with the training split made imbalanced: class ``k`` of ``K`` (in the
order given) keeps ``largest * imbalance ** (-k / (K - 1))`` training files (a geometric
decay from ``largest`` to ``largest / imbalance``, the long-tailed CIFAR protocol of Cui et
al., CVPR 2019), drawn at random with ``--seed``. The test split keeps every file of the
named classes, so accuracy stays comparable across classes. The files are copied byte for
byte (no re-encoding); the output is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import zipfile
from pathlib import Path


def training_counts(largest: int, imbalance: float, classes: int) -> list[int]:
    """Files kept per class: ``largest * imbalance ** (-k / (classes - 1))`` for ``k = 0 .. classes - 1``."""
    if classes == 1:
        return [largest]
    return [max(1, round(largest * imbalance ** (-k / (classes - 1)))) for k in range(classes)]


def write_subset(source: Path, classes: list[str], largest: int, imbalance: float, out: Path,
                 seed: int = 0, progress=print) -> dict:
    with zipfile.ZipFile(source) as archive:
        names = [name for name in archive.namelist() if not name.endswith("/")]
        by_folder: dict[tuple[str, str], list[str]] = {}
        for name in names:
            parts = name.split("/")
            if len(parts) == 3 and parts[0] in ("train", "test"):
                by_folder.setdefault((parts[0], parts[1]), []).append(name)
        missing = [c for c in classes if ("train", c) not in by_folder or ("test", c) not in by_folder]
        if missing:
            raise SystemExit(f"{source}: no train/ and test/ folder for {', '.join(missing)}")
        counts = training_counts(largest, imbalance, len(classes))
        rng = random.Random(seed)
        chosen = {}
        for name, count in zip(classes, counts):
            files = sorted(by_folder[("train", name)])
            if count > len(files):
                raise SystemExit(f"{source}: class {name} has {len(files)} training files, fewer than {count}")
            chosen[("train", name)] = sorted(rng.sample(files, count))
            chosen[("test", name)] = sorted(by_folder[("test", name)])
        partial = out.with_name(out.name + ".partial")
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as written:
                for files in chosen.values():
                    for name in files:
                        written.writestr(name, archive.read(name))
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, out)
    summary = {c: {"train": len(chosen[("train", c)]), "test": len(chosen[("test", c)])} for c in classes}
    progress(f"wrote {out}: " + ", ".join(f"{c} {v['train']}/{v['test']}" for c, v in summary.items())
             + " (train/test files)")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="zip with train/<class>/* and test/<class>/*")
    parser.add_argument("--classes", required=True, help="comma-separated class folder names, largest first")
    parser.add_argument("--largest", type=int, default=4000, help="training files of the first class")
    parser.add_argument("--imbalance", type=float, default=8.0, help="largest over smallest class (1: balanced)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the zip to write")
    args = parser.parse_args(argv)
    classes = [c for c in args.classes.split(",") if c]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        parser.error("--classes: two or more distinct names")
    if args.largest < 1 or args.imbalance < 1:
        parser.error("--largest must be at least 1 and --imbalance at least 1")
    write_subset(Path(args.source), classes, args.largest, args.imbalance, Path(args.out), args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
