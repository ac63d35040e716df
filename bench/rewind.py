"""Rewind: the time to rebuild a 10-minute lab at a rewind point, with and without checkpoints.

``python -m bench.rewind --minutes 10 --json`` runs a sandbox lab on real files
(FileStorage in a temporary folder) for ``--minutes`` of simulated time with a
learner's commands along the way (a broker crash and restart, an extra consumer,
a producer rate change, a burst), taking a checkpoint every
``CHECKPOINT_SIM_MS`` exactly as the web runtime does (``core_log.snapshot``,
bounded by ``MAX_CHECKPOINT_BYTES``/``MAX_CHECKPOINTS``). Then, for rewind
points spread over the run (the worst case: just before the next checkpoint),
it rebuilds the lab at that moment

* **without checkpoints** — ``LabWorld.replay`` from the seed (what a fork cost
  before, and what a rewind costs after a server restart);
* **with checkpoints** — restore the nearest checkpoint into a fresh directory,
  replay the commands after it (``replay_commands``); past its memory bound the
  store thins older checkpoints out (``CheckpointStore``), so an old point has a
  wider gap to replay; one before every kept checkpoint replays from the seed,

and checks that both give the identical ``view()``. It reports the seconds of
each, the snapshot cost on the engine thread (mean/max per checkpoint), the
checkpoint sizes, and how many the memory bound kept. The goal of issue 6 is
≤ 2 s for the rebuild at a rewind point.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from core_log.lab import LabWorld
from core_log.snapshot import Checkpoint, CheckpointStore, replay_commands, restore, snapshot

CHECKPOINT_SIM_MS = 5_000  # as messaging_lab.labs.runtime.CHECKPOINT_SIM_MS (kept here so the bench needs no Django)


def learner_commands(minutes: int) -> list[tuple[int, dict]]:
    end = minutes * 60_000
    plan = [(0.2, {"kind": "crash_broker", "broker": "2", "mode": "kill"}),
            (0.3, {"kind": "restart_broker", "broker": "2"}),
            (0.45, {"kind": "add_consumer", "group": "dashboard"}),
            (0.6, {"kind": "configure_producer", "producer": "telemetry", "rate_per_s": "100"}),
            (0.7, {"kind": "burst", "producer": "telemetry", "records": "500"}),
            (0.8, {"kind": "crash_broker", "broker": "3", "mode": "power_loss"}),
            (0.85, {"kind": "restart_broker", "broker": "3"})]
    return [(int(end * f), c) for f, c in plan]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--points", type=int, default=6, help="how many of the six rewind points to measure")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)

    scratch = tempfile.mkdtemp(prefix="rewind-bench-")
    try:
        end_ms = args.minutes * 60_000
        commands = learner_commands(args.minutes)
        store = CheckpointStore()
        snap_seconds: list[float] = []
        world = LabWorld("sandbox", args.seed, data_dir=os.path.join(scratch, "live"))
        started = time.perf_counter()
        logged = [(i, at, c) for i, (at, c) in enumerate(commands, 1)]

        def on_checkpoint(w: LabWorld, applied: int) -> None:
            t = time.perf_counter()
            newest = store.newest()
            store.add(Checkpoint(snapshot(w, like=newest.snapshot if newest else None), applied))
            snap_seconds.append(time.perf_counter() - t)

        replay_commands(world, logged, end_ms, checkpoint_every_ms=CHECKPOINT_SIM_MS, on_checkpoint=on_checkpoint)
        live_run_s = time.perf_counter() - started - sum(snap_seconds)
        sizes = [c.size_bytes for c in store._items]  # each on its own; the store shares unchanged chunks

        # Rewind points: just before the newest checkpoint boundary and three intervals back (the worst
        # case among recent moments: a whole interval to replay), one in the middle of an interval (the
        # typical case), and the middle of the run, where the store has thinned its checkpoints out to
        # fit its memory bound (a wider gap to replay; before thinning it was a replay from the seed).
        points = [end_ms - 100, end_ms - 2 * CHECKPOINT_SIM_MS - CHECKPOINT_SIM_MS // 2,
                  end_ms - 3 * CHECKPOINT_SIM_MS - 100, end_ms * 3 // 4 - 100, end_ms // 2 - 100,
                  end_ms // 4 - 100][:args.points]
        results = []
        for n, at_ms in enumerate(points):
            upto = [(at, c) for at, c in commands if at <= at_ms]
            # The checkpoint rebuild first, with only the live world in memory (as in the server); its
            # view is kept and the world dropped before the replay from the seed builds a second one.
            cp = store.nearest(at_ms)
            d_cp = os.path.join(scratch, f"cp-{n}")
            t = time.perf_counter()
            if cp is None:
                fast = LabWorld.replay("sandbox", args.seed, upto, at_ms, data_dir=d_cp)
                restore_s = 0.0
            else:
                fast = restore(cp.snapshot, d_cp)
                restore_s = time.perf_counter() - t
                replay_commands(fast, [x for x in logged if x[0] > cp.commands_applied and x[1] <= at_ms], at_ms)
            fast_s = time.perf_counter() - t
            fast_view = fast.view()
            del fast
            d_full = os.path.join(scratch, f"full-{n}")
            t = time.perf_counter()
            full = LabWorld.replay("sandbox", args.seed, upto, at_ms, data_dir=d_full)
            full_s = time.perf_counter() - t
            same = full.view() == fast_view
            del full
            results.append({"at_ms": at_ms, "full_replay_s": round(full_s, 3), "checkpoint_rebuild_s": round(fast_s, 3),
                            "restore_s": round(restore_s, 3),
                            "checkpoint_at_ms": None if cp is None else cp.at_ms, "identical_view": same,
                            "speedup": round(full_s / fast_s, 1) if fast_s else None})
            for d in (d_full, d_cp):
                shutil.rmtree(d, ignore_errors=True)
        out = {
            "bench": "rewind", "minutes": args.minutes, "seed": args.seed, "python": sys.version.split()[0],
            "checkpoint_sim_ms": CHECKPOINT_SIM_MS, "live_run_s": round(live_run_s, 2),
            "checkpoints_taken": len(snap_seconds), "checkpoints_kept": len(store),
            "checkpoints_kept_bytes": store.bytes, "checkpoint_limits": {"max_bytes": store.max_bytes,
                                                                         "max_count": store.max_count},
            "snapshot_s_mean": round(statistics.mean(snap_seconds), 3) if snap_seconds else None,
            "snapshot_s_max": round(max(snap_seconds), 3) if snap_seconds else None,
            "checkpoint_bytes_last": sizes[-1] if sizes else None,
            "checkpoint_bytes_max": max(sizes) if sizes else None,
            "oldest_kept_at_ms": store._items[0].at_ms if len(store) else None,
            "rewinds": results,
            "goal_s": 2.0,
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "machine": f"{os.cpu_count()} cores, shared with other work while measuring",
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.json:
        print(text)
    else:
        for r in out["rewinds"]:
            print(f"rewind to {r['at_ms'] / 1000:.1f} s: full replay {r['full_replay_s']} s, from checkpoint "
                  f"{r['checkpoint_rebuild_s']} s (identical: {r['identical_view']})")
        print(f"{out['checkpoints_kept']} of {out['checkpoints_taken']} checkpoints kept, {out['checkpoints_kept_bytes']}"
              f" bytes; a snapshot took {out['snapshot_s_mean']} s on average")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
