"""The ``raycallbacks`` console script.

``raycallbacks verify CERT.json [--path DIR ...] [--callback-kwargs SPEC=JSON|@FILE ...]`` is
the deploy gate: exit 0 only when every certified callback's current source still hashes to
what the certificate recorded, its verdict was ``certified``, the installed Ray matches the
certificate's major.minor, and each ``CallbackBase`` subclass is deployed with the
``callback_kwargs`` it was certified with (given as to ``--raycallbacks-callback-kwargs``;
none given means none); otherwise print what changed and exit 1. A certificate or a
``--callback-kwargs`` value that cannot be read exits 2.

``raycallbacks cluster up [--gpus-per-node N --nodes M | --topology SPEC]`` starts the kit's
simulated GPU cluster in the background and keeps it warm between runs;
``raycallbacks cluster status`` says whether it is up (exit 0), down (1) or unhealthy (2);
``raycallbacks cluster down`` stops it. ``pytest --raycallbacks-cluster live`` uses it while
it is up (:mod:`pytest_raycallbacks.live.warm`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .verify import CertificateError, load_certificate, verify_certificate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="raycallbacks", description="pytest-raycallbacks command-line tools"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify",
        help="check that a certificate still holds for the code about to be deployed",
        description=__doc__.splitlines()[2] if __doc__ else None,
    )
    verify.add_argument("certificate", help="certificate JSON written by --raycallbacks-report")
    verify.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="folder to search for the callbacks' modules (repeatable; default: the "
        "current folder)",
    )
    verify.add_argument(
        "--callback-kwargs",
        action="append",
        default=[],
        metavar="SPEC=JSON",
        help="the callback_kwargs a Ray CallbackBase subclass is deployed with: a JSON "
        "object or @FILE (.json, .yaml, .yml), as given to --raycallbacks-callback-kwargs; "
        "repeatable, one per spec",
    )
    verify.add_argument(
        "--serve-config",
        action="append",
        default=[],
        metavar="PATH",
        help="the Ray Serve config (or LLMConfig file) about to be deployed: fail when its "
        "callback entries, their callback_kwargs or llm_configs differ from what was "
        "certified (repeatable; the gate before 'serve deploy PATH')",
    )
    _add_cluster_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "cluster":
        return _cluster(args, parser)
    return _verify(args)


def _verify(args: argparse.Namespace) -> int:
    from .callback_kwargs import CallbackKwargsError, parse_all
    from .serve_config import ServeConfigError, read_serve_config

    try:
        document = load_certificate(args.certificate)
        deployed = parse_all(args.callback_kwargs, option="--callback-kwargs")
        serve_configs = [read_serve_config(p, validate=False) for p in args.serve_config]
    except (CertificateError, CallbackKwargsError, ServeConfigError) as exc:
        print(f"raycallbacks verify: {exc}", file=sys.stderr)
        return 2
    findings = verify_certificate(
        document,
        import_paths=args.path or ["."],
        callback_kwargs=deployed,
        serve_configs=serve_configs,
    )
    specs = [str(entry.get("spec")) for entry in document["callbacks"]]
    if not findings:
        for spec in specs:
            print(f"ok  {spec}: certified, source unchanged")
        print(f"raycallbacks verify: {args.certificate} holds for {len(specs)} callback(s)")
        return 0
    for finding in findings:
        print(f"FAIL {finding}")
    print(
        f"raycallbacks verify: {args.certificate} does not hold ({len(findings)} problem(s)); "
        "do not deploy: certify again with pytest --raycallbacks-conformance ... "
        "--raycallbacks-report"
    )
    return 1


def _add_cluster_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = commands.add_parser(
        "cluster",
        help="a warm local Ray cluster (simulated GPUs) kept between certification runs",
        description="Start, inspect or stop the warm cluster that "
        "'pytest --raycallbacks-cluster live' uses while it is up.",
    )
    actions = cluster.add_subparsers(dest="action", required=True)
    up = actions.add_parser(
        "up",
        help="start the warm cluster in the background (a no-op when it is up)",
        description="Start the kit's simulated GPU cluster in the background: a head "
        "without GPUs and NODES nodes of GPUS_PER_NODE GPUs (the first an A100), or "
        "--topology.",
    )
    up.add_argument("--gpus-per-node", type=int, default=2, metavar="N", help="default 2")
    up.add_argument("--nodes", type=int, default=2, metavar="M", help="GPU nodes; default 2")
    up.add_argument(
        "--topology",
        metavar="SPEC",
        help="the nodes as $RAYCALLBACKS_SIMULATE_NODES spells them, head first, e.g. "
        "'0:2,2:2:A100,2:2' (instead of --gpus-per-node/--nodes)",
    )
    up.add_argument(
        "--start-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds the start may take (default 120)",
    )
    actions.add_parser("status", help="say whether the warm cluster is up (exit 0), down (1)")
    actions.add_parser("down", help="stop the warm cluster and remove its folder")


def topology_of(gpus_per_node: int, nodes: int) -> str:
    """The topology ``cluster up --gpus-per-node N --nodes M`` starts: a head with 2 CPUs and
    no GPU, then ``M`` nodes of ``N`` GPUs and ``max(1, N)`` CPUs, the first an A100 (with
    the defaults, the live cluster's default topology)."""
    workers = [
        f"{gpus_per_node}:{max(1, gpus_per_node)}" + (":A100" if i == 0 else "")
        for i in range(nodes)
    ]
    return ",".join(["0:2", *workers])


def _cluster(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .live import warm
    from .live.config import config_from_env

    if args.action == "status":
        return warm.status()
    if args.action == "down":
        return warm.down()
    if args.topology and (args.gpus_per_node != 2 or args.nodes != 2):
        parser.error("--topology replaces --gpus-per-node and --nodes: give one or the other")
    if args.gpus_per_node < 0 or args.nodes < 0:
        parser.error("--gpus-per-node and --nodes must be >= 0")
    topology = args.topology or topology_of(args.gpus_per_node, args.nodes)
    try:
        tmp_root = config_from_env().tmp_root
        return warm.up(topology, tmp_root=tmp_root, start_timeout_s=args.start_timeout)
    except ValueError as exc:  # a bad topology or RAYCALLBACKS_* variable
        print(f"raycallbacks cluster up: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # up has ended what it started and said so
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
