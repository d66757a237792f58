"""Ingest throughput end to end, and where the time goes.

Usage: `python -m bench.ingest [--zip PATH ...] [--images N ...] [--runs 3]`.

The headline figure is the whole `fieldlens dataset add` process (start-up, imports, archive checks,
layout detection, every image's header, hash and near-duplicate thumbnail, blob writes, one sync,
the database), timed from outside in a fresh data folder. Target: at least 1,000 images/s on
`../shared/datasets/robosub_transdec.zip` (1,713 images), memory flat in the zip's size.

The breakdown then times each stage alone, on one thread, in this process: the stages overlap on
threads in the real run, so their sum is more than the wall time.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_ZIP = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "robosub_transdec.zip"


def end_to_end(zip_path: Path, runs: int) -> list[dict]:
    """Time `fieldlens dataset add` as a user runs it: a new process and an empty data folder each run."""
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "FIELDLENS_HOME": home}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "fieldlens",
                    "dataset",
                    "add",
                    str(zip_path),
                    "--name",
                    "bench",
                    "--json",
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0:
                raise SystemExit(f"fieldlens dataset add failed:\n{proc.stderr}")
            import json

            report = json.loads(proc.stdout)
            out.append(
                {
                    "images": report["images"],
                    "seconds": seconds,
                    "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                    "peak_rss_mb": after.ru_maxrss / 1024,
                }
            )
    return out


def startup_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fieldlens", "--version"], capture_output=True, check=True)
    return time.perf_counter() - start


def breakdown(zip_path: Path) -> dict[str, float]:
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
    lap("near-duplicate thumbnails (1/8-scale decode)")
    plan_splits([e.image for e in layout.entries], hashes, [e.split for e in layout.entries], 0.2, 1)
    lap("grouping and split")
    with tempfile.TemporaryDirectory() as tmp:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zip", type=Path, nargs="*", default=None, help="Dataset zips (default: robosub).")
    parser.add_argument("--images", type=int, nargs="*", default=[], help="Also synthetic zips of N images.")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    zips: list[Path] = list(args.zip) if args.zip is not None else [SHARED_ZIP] if SHARED_ZIP.exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        if args.images:
            from storage.voc.synth import make_voc_zip

            for n in args.images:
                path = Path(tmp) / f"synth-{n}.zip"
                make_voc_zip(path, images=n, seed=n)
                zips.append(path)
        if not zips:
            raise SystemExit("No zip to measure: pass --zip PATH or --images N (../shared is absent).")
        print(f"process start-up (fieldlens --version): {startup_seconds():.2f} s")
        print(
            f"{'zip':<28} {'MB':>6} {'images':>7} {'wall s':>7} {'images/s':>9} {'CPU s':>6} "
            f"{'peak RSS MB':>12}"
        )
        for path in zips:
            for r in end_to_end(path, args.runs):
                print(
                    f"{path.name:<28} {path.stat().st_size / 1024**2:>6.1f} {r['images']:>7} "
                    f"{r['seconds']:>7.2f} "
                    f"{r['images'] / r['seconds']:>9.0f} {r['cpu_s']:>6.2f} {r['peak_rss_mb']:>12.1f}"
                )
        for path in zips:
            print(f"\nwhere the time goes in {path.name} (each stage alone, one thread):")
            stages = breakdown(path)
            for name, seconds in stages.items():
                print(f"  {name:<46} {seconds:>6.3f} s")
            print(f"  {'sum':<46} {sum(stages.values()):>6.3f} s")


if __name__ == "__main__":
    main()
