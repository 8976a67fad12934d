"""The ``raycallbacks`` console script.

``raycallbacks verify CERT.json [--path DIR ...]`` is the deploy gate: exit 0 only when every
certified callback's current source still hashes to what the certificate recorded, its
verdict was ``certified``, and the installed Ray matches the certificate's major.minor;
otherwise print what changed and exit 1. A certificate that cannot be read exits 2.
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
    args = parser.parse_args(argv)
    try:
        document = load_certificate(args.certificate)
    except CertificateError as exc:
        print(f"raycallbacks verify: {exc}", file=sys.stderr)
        return 2
    findings = verify_certificate(document, import_paths=args.path or ["."])
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
