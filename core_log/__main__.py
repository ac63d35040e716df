"""The ``core_log`` command line: ``python -m core_log COMMAND``.

Commands:

* ``dump-log PATH`` — print a segment's (or a partition directory's) batches and records;
* ``scenarios`` — list the named fault scenarios;
* ``simulate --scenario NAME --seed N [--json]`` — run one headless, print the checker's verdict;
* ``bench [--json] [--records N] [--dir DIR]`` — measure the storage layer against
  a raw ``os.write`` baseline taken in the same run (see ``bench/storage_bench.py``).

Bad flags exit with status 2 and a usage message (argparse); a corrupt segment
makes ``dump-log`` exit with status 1 after printing what was valid.
"""

from __future__ import annotations

import argparse
import json
import sys

from core_log.errors import StorageError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core_log", description="Messaging Lab's log engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump-log", help="print the batches and records of a segment file or partition directory")
    dump.add_argument("path", help="a NNNNNNNNNNNNNNNNNNNN.log file or a directory of them")
    dump.add_argument("--batches-only", action="store_true", help="print batch headers, not records")
    dump.add_argument("--offsets-decoder", action="store_const", const="offsets", dest="decoder",
                      help="decode records as __consumer_offsets commits and group metadata (automatic for "
                           "__consumer_offsets-N directories)")
    dump.add_argument("--transaction-log-decoder", action="store_const", const="transaction-log", dest="decoder",
                      help="decode records as __transaction_state entries (automatic for __transaction_state-N)")
    sub.add_parser("scenarios", help="list the named fault scenarios")
    simulate = sub.add_parser("simulate", help="run one named scenario headless and print the checker's verdict")
    simulate.add_argument("--scenario", required=True, help="a name from 'python -m core_log scenarios'")
    simulate.add_argument("--seed", type=_seed, default=0, help="the seed (0 to 2**63-1); same seed, same run")
    simulate.add_argument("--json", action="store_true", help="print one JSON object")
    simulate.add_argument("--timeline", action="store_true",
                          help="also print the narrated events (leader moves, ISR changes, anomalies…)")
    bench = sub.add_parser("bench", help="measure append, read and recovery against a raw-write baseline")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--records", type=_positive_int, default=1_000_000,
                       help="records in the log (default 1,000,000; a multiple of 100)")
    bench.add_argument("--dir", default=None, help="scratch directory (default: a temporary one, removed after)")
    bench.add_argument("--produce-records", type=_positive_int, default=50_000,
                       help="records for the cluster produce benchmark (default 50,000)")
    bench.add_argument("--wire-records", type=_positive_int, default=200_000,
                       help="records a real confluent-kafka client sends through 'serve' (default 200,000)")
    bench.add_argument("--storage-only", action="store_true", help="skip the cluster benchmarks")
    serve = sub.add_parser("serve", help="run a standalone cluster that real Kafka clients can connect to")
    serve.add_argument("--brokers", type=_broker_count, default=3, help="brokers (1–9, default 3)")
    serve.add_argument("--port", type=_port, default=19092,
                       help="broker 1's port; broker N listens on port+N-1 (default 19092)")
    serve.add_argument("--data-dir", default="var/serve", help="where the brokers keep their logs (default var/serve)")
    serve.add_argument("--topic", action="append", default=[],
                       help="create this topic first (3 partitions, replicated); repeatable. Producers also "
                            "create topics on first use")
    serve.add_argument("--seed", type=_seed, default=0, help="the seed of the cluster's randomness")
    return parser


def _broker_count(text: str) -> int:
    value = _positive_int(text)
    if value > 9:
        raise argparse.ArgumentTypeError(f"a cluster has 1 to 9 brokers, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1024 <= value <= 65526:
        raise argparse.ArgumentTypeError(f"must be 1024–65526 (unprivileged, room for 9 brokers), got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "dump-log":
        from core_log.dump import dump_path

        if hasattr(sys.stdout, "reconfigure"):  # keys, values and "…" must not crash a non-UTF-8 stdout
            sys.stdout.reconfigure(errors="backslashreplace")
        try:
            ok = dump_path(args.path, sys.stdout, print_records=not args.batches_only, decoder=args.decoder)
        except StorageError as exc:
            print(f"dump-log: {exc}", file=sys.stderr)
            return 2
        return 0 if ok else 1
    if args.command == "scenarios":
        from core_log.sim import SCENARIOS

        for name in sorted(SCENARIOS):
            scenario = SCENARIOS[name]
            expect = scenario.expectation
            print(f"{name:28} expect {expect:36} {scenario.description}")
        return 0
    if args.command == "simulate":
        from core_log.sim import SCENARIOS, run_scenario

        if args.scenario not in SCENARIOS:
            print(f"simulate: unknown scenario {args.scenario!r}; run 'python -m core_log scenarios' to list them",
                  file=sys.stderr)
            return 2
        result = run_scenario(args.scenario, args.seed, timeline=args.timeline)
        if not args.timeline:
            result.pop("timeline", None)
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            for time_ms, _, text in result.get("timeline") or ():
                print(f"{time_ms / 1000:8.3f}s  {text}")
            verdict = "valid" if result["valid"] else "INVALID: " + ", ".join(
                f"{name} ×{count}" for name, count in sorted(result["anomalies"].items()))
            print(f"{args.scenario} seed={args.seed}: {verdict} (acked {result['acked']}, consumed "
                  f"{result['consumed']}; expected {result['expected']})")
        return 0
    if args.command == "bench":
        from bench.storage_bench import run_storage_bench

        if args.records % 100:
            print("bench: --records must be a multiple of 100 (batches of 100 records)", file=sys.stderr)
            return 2
        figures = run_storage_bench(records=args.records, scratch_dir=args.dir)
        if not args.storage_only:
            from bench.cluster_bench import run_cluster_bench
            from bench.consume_bench import run_consume_bench

            figures.update(run_cluster_bench(records=args.produce_records))
            figures.update(run_consume_bench(records=args.produce_records))
            from bench.wire_bench import run_wire_bench

            figures.update(run_wire_bench(records=args.wire_records))
        if args.json:
            print(json.dumps(figures, sort_keys=True))
        else:
            for name, value in figures.items():
                print(f"{name:32} {value}")
        return 0
    if args.command == "serve":
        from core_log.cluster import ClusterError
        from core_log.wire.serve import run_serve  # the wire package is the one place asyncio may be used

        try:
            run_serve(args.brokers, args.port, args.data_dir, seed=args.seed, topics=args.topic)
        except (ClusterError, OSError) as exc:  # a bad topic name, a port in use
            print(f"serve: {exc}", file=sys.stderr)
            return 2
        return 0
    return 2  # unreachable: argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
