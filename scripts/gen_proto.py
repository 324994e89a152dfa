"""Regenerate (or check) the Python modules for proto/provider/v1alpha1/service.proto.

    python scripts/gen_proto.py          # rewrite provider/v1alpha1/*
    python scripts/gen_proto.py --check  # exit 1 if the committed modules are stale

The .proto sits under proto/provider/v1alpha1/ so that protoc names it
"provider/v1alpha1/service.proto", the same name the driver registers, and writes
absolute imports (`from provider.v1alpha1 import service_pb2`) that work in our package.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_FILE = "provider/v1alpha1/service.proto"
GENERATED = ("service_pb2.py", "service_pb2.pyi", "service_pb2_grpc.py")
INIT_TEXT = '"""Generated from proto/provider/v1alpha1/service.proto; see scripts/gen_proto.py."""\n'


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    status = protoc.main(
        [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(PROTO_ROOT / PROTO_FILE),
        ]
    )
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")
    (out_dir / "provider" / "v1alpha1" / "__init__.py").write_text(INIT_TEXT)


def stale_files(generated_root: Path) -> list[str]:
    package_dir = ROOT / "provider" / "v1alpha1"
    fresh_dir = generated_root / "provider" / "v1alpha1"
    stale = []
    for name in (*GENERATED, "__init__.py"):
        committed = package_dir / name
        if not committed.exists() or not filecmp.cmp(committed, fresh_dir / name, shallow=False):
            stale.append(name)
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed modules are stale")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            stale = stale_files(Path(tmp))
        if stale:
            print(f"stale generated modules: {', '.join(stale)}; run: python scripts/gen_proto.py")
            return 1
        print("generated modules are up to date")
        return 0
    generate(ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
