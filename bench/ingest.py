"""Ingest throughput and peak memory: `python -m bench.ingest [--images 1000 4000] [--zip PATH]`.

Each measurement runs in a fresh child process so peak RSS belongs to that ingest alone.
Target: at least 1,000 images/s, and peak memory that does not grow with the zip's size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(zip_path: str, home: str) -> None:
    from storage.services import open_services
    from storage.settings import Settings
    from storage.voc.synth import make_voc_zip

    services = open_services(Settings(home=Path(home)))
    # Warm up once (imports, Pillow's plugin registry) as a long-running server would be.
    services.datasets.add("local", "warmup", make_voc_zip(images=3, seed=99))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = services.datasets.add("local", "bench", Path(zip_path))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "images": report.dataset.image_count,
                "seconds": seconds,
                "images_per_s": report.dataset.image_count / seconds,
                "peak_rss_mb": peak / 1024,
                "ingest_rss_growth_mb": (peak - base) / 1024,
                "zip_mb": Path(zip_path).stat().st_size / 1024**2,
            }
        )
    )


def measure(zip_path: Path) -> dict:
    with tempfile.TemporaryDirectory() as home:
        out = subprocess.run(
            [sys.executable, "-m", "bench.ingest", "--child", str(zip_path), home],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, nargs="*", default=[1000, 4000])
    parser.add_argument("--zip", type=Path, nargs="*", default=[], help="Also measure these dataset zips.")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from storage.voc.synth import make_voc_zip

    zips: list[Path] = list(args.zip)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.images:
            path = Path(tmp) / f"synth-{n}.zip"
            make_voc_zip(path, images=n, seed=n)
            zips.append(path)
        print(f"{'zip':<28} {'MB':>7} {'images':>7} {'images/s':>9} {'peak RSS MB':>12} {'growth MB':>10}")
        for path in zips:
            r = measure(path)
            print(
                f"{path.name:<28} {r['zip_mb']:>7.1f} {r['images']:>7} {r['images_per_s']:>9.0f} "
                f"{r['peak_rss_mb']:>12.1f} {r['ingest_rss_growth_mb']:>10.1f}"
            )


if __name__ == "__main__":
    main()
