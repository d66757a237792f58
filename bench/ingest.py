"""Ingest throughput end to end, and where the time goes.

Usage: `python -m bench.ingest [--zip PATH ...] [--images N ...] [--runs 3] [--baseline DIR] [--scratch DIR]`.

The headline figure is the whole `fieldlens dataset add` process (start-up, imports, archive checks,
layout detection, every image's header, hash and near-duplicate thumbnail, blob writes, one sync,
the database), timed from outside in a fresh data folder. Target: at least 1,000 images/s on
`../shared/datasets/robosub_transdec.zip` (1,713 images), memory flat in the zip's size.

`--baseline DIR` runs the same command from another source tree too (say an older revision:
`git archive HEAD | tar -x -C /tmp/base`), alternating with this one, so that a before/after
comparison sees the same load on a shared machine. CPU is user + system seconds of the process.

The breakdown then times each stage alone, on one thread, in this process: the stages overlap on
threads in the real run, so their sum is more than the wall time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THIS_TREE = Path(__file__).resolve().parents[1]
SHARED_ZIP = THIS_TREE.parent / "shared" / "datasets" / "robosub_transdec.zip"


def end_to_end(zip_path: Path, tree: Path, scratch: Path) -> dict:
    """Time `fieldlens dataset add` as a user runs it: a new process and an empty data folder.

    The data folder is left in `scratch` (removed at the end of the benchmark): removing it at once
    would slow the next run's file creations on an ext4 without a journal (the development
    machine's), which steps, inode by inode, past every inode deleted in the last minute or so.
    """
    home = Path(tempfile.mkdtemp(dir=scratch))
    env = {**os.environ, "FIELDLENS_HOME": str(home / "data"), "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "fieldlens", "dataset", "add", str(zip_path), "--name", "b", "--json"]
    with open(home / "stdout", "w+b") as out, open(home / "stderr", "w+b") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=tree)
        _, status, usage = os.wait4(proc.pid, 0)  # this process's own CPU and peak memory
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"fieldlens dataset add failed in {tree}:\n{err.read().decode()}")
        images = json.loads(out.read())["images"]
    return {
        "images": images,
        "seconds": seconds,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def startup_seconds(tree: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fieldlens", "--version"], capture_output=True, check=True, env=env, cwd=tree
    )
    return time.perf_counter() - start


def breakdown(zip_path: Path, scratch: Path) -> dict[str, float]:
    """Seconds per stage, each run alone on one thread."""
    from PIL import Image

    from storage.blobs import BlobStore, sha256_hex
    from storage.db import open_db
    from storage.voc.archive import Limits, is_junk, open_archive
    from storage.voc.findings import Findings
    from storage.voc.layouts import detect
    from storage.voc.neardup import dhash
    from storage.voc.split import plan_splits

    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name] = now - clock
        clock = now

    archive = open_archive(zip_path, Limits())
    lap("archive checks (zip directory)")
    layout = detect(archive, [m.name for m in archive.members if not is_junk(m.name)], Findings())
    lap("layout and annotations (XML/JSON/YAML)")
    datas = [archive.read(e.image) for e in layout.entries]
    lap("inflating photos")
    digests = [sha256_hex(d) for d in datas]
    lap("sha256")
    for d in datas:
        with Image.open(io.BytesIO(d)) as img:
            img.getexif()
    lap("image headers and EXIF")
    hashes = []
    for d in datas:
        with Image.open(io.BytesIO(d)) as img:
            hashes.append(dhash(img))
    lap("near-duplicate thumbnails (1/8-scale grey decode)")
    plan_splits([e.image for e in layout.entries], hashes, [e.split for e in layout.entries], 0.2, 1)
    lap("grouping and split")
    tmp = tempfile.mkdtemp(dir=scratch)
    blobs = BlobStore(Path(tmp) / "blobs")
    for d, digest in zip(datas, digests, strict=True):
        blobs.put(d, digest, durable=False)
    lap("blob writes")
    blobs.flush()
    lap("one sync")
    db = open_db(Path(tmp) / "db.sqlite")
    with db.atomic():
        db.execute("INSERT INTO teams (id, created_at) VALUES ('b', '')")
        ds = db.execute(
            "INSERT INTO datasets (team_id, name, created_at, image_count, box_count, label_counts,"
            " warnings, lint, split_seed, val_fraction)"
            " VALUES ('b', 'b', '', 0, 0, '{}', '[]', '[]', 0, 0.2)"
        ).lastrowid
        for e, digest in zip(layout.entries, digests, strict=True):
            image_id = db.execute(
                "INSERT INTO images (dataset_id, filename, sha256, format, width, height, split)"
                " VALUES (?, ?, ?, 'JPEG', 1, 1, 'train')",
                [ds, e.image, digest],
            ).lastrowid
            db.conn.executemany(
                "INSERT INTO boxes (image_id, label, xmin, ymin, xmax, ymax) VALUES (?, ?, ?, ?, ?, ?)",
                [(image_id, b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in e.annotation.boxes],
            )
    lap("database rows")
    db.close()
    archive.close()
    return t


def _print_run(zip_path: Path, label: str, r: dict) -> None:
    print(
        f"{zip_path.name:<28} {label:<9} {zip_path.stat().st_size / 1024**2:>6.1f} {r['images']:>7} "
        f"{r['seconds']:>7.2f} {r['images'] / r['seconds']:>9.0f} "
        f"{r['user_s'] + r['sys_s']:>6.2f} {r['user_s']:>5.2f} {r['sys_s']:>5.2f} {r['peak_rss_mb']:>12.1f}"
    )


def _print_summary(zip_path: Path, label: str, runs: list[dict]) -> None:
    """Median and best of the runs: on a shared machine the best run is the least disturbed one."""
    walls = sorted(r["seconds"] for r in runs)
    cpus = sorted(r["user_s"] + r["sys_s"] for r in runs)
    images = runs[0]["images"]
    print(
        f"{zip_path.name:<28} {label:<9} median {walls[len(walls) // 2]:.2f} s "
        f"({images / walls[len(walls) // 2]:.0f} images/s), best {walls[0]:.2f} s ({images / walls[0]:.0f} "
        f"images/s); CPU median {cpus[len(cpus) // 2]:.2f} s, least {cpus[0]:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zip", type=Path, nargs="*", default=None, help="Dataset zips (default: robosub).")
    parser.add_argument("--images", type=int, nargs="*", default=[], help="Also synthetic zips of N images.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="Another source tree to time alongside this one.")
    parser.add_argument("--scratch", type=Path, help="Where the runs' data folders go (default: temp).")
    args = parser.parse_args()
    zips: list[Path] = list(args.zip) if args.zip is not None else [SHARED_ZIP] if SHARED_ZIP.exists() else []
    trees = {"": THIS_TREE} if args.baseline is None else {"baseline": args.baseline, "this": THIS_TREE}
    scratch = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.scratch))
    try:
        if args.images:
            from storage.voc.synth import make_voc_zip

            for n in args.images:
                path = scratch / f"synth-{n}.zip"
                make_voc_zip(path, images=n, seed=n)
                zips.append(path)
        if not zips:
            raise SystemExit("No zip to measure: pass --zip PATH or --images N (../shared is absent).")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        for label, tree in trees.items():
            print(
                f"process start-up (fieldlens --version){f' {label}' if label else ''}: "
                f"{startup_seconds(tree):.2f} s"
            )
        print(
            f"{'zip':<28} {'tree':<9} {'MB':>6} {'images':>7} {'wall s':>7} {'images/s':>9} {'CPU s':>6} "
            f"{'user':>5} {'sys':>5} {'peak RSS MB':>12}"
        )
        results: dict[tuple[Path, str], list[dict]] = {}
        for path in zips:
            for _ in range(args.runs):
                for label, tree in trees.items():  # alternating: both see the same load
                    r = end_to_end(path, tree, scratch)
                    results.setdefault((path, label), []).append(r)
                    _print_run(path, label, r)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        for (path, label), runs in results.items():
            _print_summary(path, label, runs)
        for path in zips:
            print(f"\nwhere the time goes in {path.name} (each stage alone, one thread):")
            stages = breakdown(path, scratch)
            for name, seconds in stages.items():
                print(f"  {name:<50} {seconds:>6.3f} s")
            print(f"  {'sum':<50} {sum(stages.values()):>6.3f} s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
