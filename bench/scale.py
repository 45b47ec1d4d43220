"""Fleet scaling: the same wave drained on PostgreSQL by 1, 2 and 4 ``automations worker``-style processes.

Usage (from the repository root)::

    .venv/bin/python bench/scale.py --n 3000 [--workers 1 2 4] [--providers real] [--enqueue api]

Each run is ``bench/wave.py`` on a fresh PostgreSQL schema with ``--workers`` set: the workers are real
runtimes ticked by the real APScheduler jobs on the real clock, claiming with ``FOR UPDATE SKIP LOCKED``
and leases. Prints one JSON object: ``msgs_per_s`` per worker count, ``speedup_2w`` (2 workers over 1),
``speedup_4w``, each run's drain time, lateness, lost and duplicated counts, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import floor, wave  # noqa: E402
from bench.common import setup_logging, temp_database, yardstick_us  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="appointments in the wave (2 messages each)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--providers", choices=("capture", "real"), default="capture")
    p.add_argument("--enqueue", choices=("inprocess", "api"), default="inprocess")
    p.add_argument("--batch-size", type=int, default=None, help="PUNCTUAL_BATCH_SIZE (default the engine's)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    runs = {}
    before = yardstick_us()
    for workers in args.workers:
        wave_argv = ["--n", str(args.n), "--db", "postgres", "--workers", str(workers),
                     "--providers", args.providers, "--enqueue", args.enqueue]
        if args.batch_size:
            wave_argv += ["--batch-size", str(args.batch_size)]
        wargs = wave.parse_args(wave_argv)
        real = floor.outside_world() if args.providers == "real" else nullcontext()
        with temp_database("postgres") as url, real as outside:
            result = wave.run(url, wargs, outside)
        runs[workers] = {
            "msgs_per_s": result["messages_per_s"],
            "drain_s": result["drain_s"],
            "lateness_p99_s": result["lateness_p99_s"],
            "lost": result["lost"],
            "duplicated": result["duplicated"],
            "per_worker_messages": result["per_worker_messages"],
            "drain_cpu_ms_per_booking": result["drain_cpu_ms_per_booking"],
            "load": [round(x, 2) for x in os.getloadavg()],
        }

    def speedup(k: int) -> float | None:
        base, other = runs.get(1, {}).get("msgs_per_s"), runs.get(k, {}).get("msgs_per_s")
        return round(other / base, 2) if base and other else None

    print(json.dumps({
        "n": args.n,
        "providers": args.providers,
        "msgs_per_s": {str(k): v["msgs_per_s"] for k, v in runs.items()},
        "speedup_2w": speedup(2),
        "speedup_4w": speedup(4),
        "runs": {str(k): v for k, v in runs.items()},
        "yardstick_us": [before, yardstick_us()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
