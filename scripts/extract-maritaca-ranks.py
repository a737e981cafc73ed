"""Extracts Maritaca's BPE vocabularies from the `maritalk` wheel into data/tokenizer/.

The `maritalk` package (MIT, Copyright (c) Maritaca AI) embeds the token ranks of the sabia-3
and sabia-4 tokenizers as gzip-compressed bytes literals in two Python modules, and its split
pattern and normalisation in `maritalk/tokenizer.py`. This script reads those files straight
from the wheel's zip archive: it parses them as Python syntax trees and never imports or runs
the package, so nothing but data leaves the wheel.

It writes, into data/tokenizer/:
  bpe-<sha256 prefix>.txt.gz  one base64 token per line, a token's rank being its line index
                              from 0 (identical vocabularies share one file);
  manifest.json               the source wheel, split pattern, normalisation and, per family,
                              its file, token count and checksum;
  LICENSE                     the licence text shipped in the wheel;
  NOTICE                      where the files come from.
The output is byte-for-byte reproducible: re-running on the same wheel changes nothing.

Usage (from the repository root; needs Python 3.10+ and pip to download the wheel):
    python3 scripts/extract-maritaca-ranks.py                 # or: npm run tokenizer:ranks
    python3 scripts/extract-maritaca-ranks.py --wheel maritalk-0.3.2-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import ast
import base64
import binascii
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NoReturn

# Bump together with a re-run of this script; the comparison test installs this same version.
MARITALK_VERSION = "0.3.2"

# Which module holds which family's ranks: maritalk/tokenizer.py imports the first as the
# sabia-3 encoder's data and the second as the sabia-4 encoder's.
FAMILY_MODULES = {
    "sabia-3": "maritalk/tokenizer_model.py",
    "sabia-4": "maritalk/tokenizer_model_v4.py",
}
TOKENIZER_MODULE = "maritalk/tokenizer.py"
PATTERN_NAME = "_PAT_STR"

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "data" / "tokenizer"


def fail(message: str) -> NoReturn:
    sys.exit(f"extract-maritaca-ranks: {message}")


def download_wheel(dest: Path) -> Path:
    """Fetches the pinned wheel with pip, without dependencies: only its files are needed."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", f"maritalk=={MARITALK_VERSION}", "--dest", str(dest),
    ]
    try:
        subprocess.run(cmd, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        fail(f"could not download maritalk=={MARITALK_VERSION} with pip ({err}); pass --wheel instead")
    wheels = sorted(dest.glob(f"maritalk-{MARITALK_VERSION}-*.whl"))
    if not wheels:
        fail(f"pip ran but left no maritalk-{MARITALK_VERSION} wheel in {dest}")
    return wheels[0]


def module_constant(source: str, name: str, module: str) -> object:
    """The literal value bound to `name` at the top level of a module's source."""
    for node in ast.parse(source, filename=module).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
            and isinstance(node.value, ast.Constant)
        ):
            return node.value.value
    fail(f"{module} has no top-level literal `{name}`: the package layout changed, update this script")


def string_constants(source: str, module: str) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(source, filename=module))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def read_tokens(wheel: zipfile.ZipFile, module: str) -> list[str]:
    """The module's base64 tokens in rank order, checked to be a complete byte-level BPE vocabulary."""
    compressed = module_constant(wheel.read(module).decode("utf-8"), "content", module)
    if not isinstance(compressed, bytes):
        fail(f"`content` in {module} is not a bytes literal")
    tokens: list[str] = []
    seen: set[bytes] = set()
    for number, line in enumerate(gzip.decompress(compressed).decode("ascii").splitlines(), 1):
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            fail(f"{module} line {number}: expected `token rank`, got {line!r}")
        token, rank = fields
        # The Node side takes a token's rank from its line, so gaps or reordering must not pass.
        if int(rank) != len(tokens):
            fail(f"{module} line {number}: rank {rank} where {len(tokens)} was expected")
        try:
            raw = base64.b64decode(token, validate=True)
        except binascii.Error:
            fail(f"{module} line {number}: {token!r} is not base64")
        if raw in seen:
            fail(f"{module} line {number}: token {token!r} appears twice")
        seen.add(raw)
        tokens.append(token)
    # Every single byte must be a token, or some inputs could not be encoded at all.
    missing = [b for b in range(256) if bytes([b]) not in seen]
    if missing:
        fail(f"{module}: {len(missing)} single bytes have no token (first: {missing[0]})")
    return tokens


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 and no file name keep the archive identical from run to run.
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as f:
        f.write(data)
    return buffer.getvalue()


def notice(wheel_name: str, wheel_sha256: str, files: list[str]) -> str:
    listed = "\n".join(f"  {name}" for name in files)
    return f"""\
The tokenizer vocabularies in this folder:

{listed}

are the byte-pair-encoding ranks of Maritaca AI's Sabia tokenizers, taken unchanged from the
`maritalk` Python package, version {MARITALK_VERSION}:

  {wheel_name}
  sha256 {wheel_sha256}

by scripts/extract-maritaca-ranks.py. Only their encoding differs: one base64 token per line,
a token's rank being its line index from 0. The split pattern and normalisation recorded in
manifest.json come from the same package.

They are Copyright (c) Maritaca AI and licensed under the MIT License in LICENSE, which must
accompany them. The rest of temporal-maritaca-batch is under its own licence (package.json).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help=f"a local maritalk-{MARITALK_VERSION} wheel (default: download it)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/tokenizer)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = args.wheel or download_wheel(Path(tmp))
        if not wheel_path.name.startswith(f"maritalk-{MARITALK_VERSION}-"):
            fail(f"{wheel_path.name} is not a maritalk {MARITALK_VERSION} wheel")
        wheel_sha256 = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
        with zipfile.ZipFile(wheel_path) as wheel:
            tokenizer_source = wheel.read(TOKENIZER_MODULE).decode("utf-8")
            pattern = module_constant(tokenizer_source, PATTERN_NAME, TOKENIZER_MODULE)
            if not isinstance(pattern, str):
                fail(f"{PATTERN_NAME} in {TOKENIZER_MODULE} is not a string")
            if "NFC" not in string_constants(tokenizer_source, TOKENIZER_MODULE):
                fail(f"{TOKENIZER_MODULE} no longer names NFC: check how it normalises text")
            licence = wheel.read(f"maritalk-{MARITALK_VERSION}.dist-info/licenses/LICENSE").decode("utf-8")
            if "Maritaca AI" not in licence or "MIT" not in licence:
                fail("the wheel's LICENSE is no longer Maritaca AI's MIT licence: review before shipping")
            family_tokens = {family: read_tokens(wheel, module) for family, module in FAMILY_MODULES.items()}

    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("bpe-*.txt.gz"):
        stale.unlink()
    encodings: dict[str, dict[str, object]] = {}
    written: list[str] = []
    for family, tokens in family_tokens.items():
        text = ("\n".join(tokens) + "\n").encode("ascii")
        digest = hashlib.sha256(text).hexdigest()
        name = f"bpe-{digest[:12]}.txt.gz"
        if name not in written:
            (args.out / name).write_bytes(gzip_bytes(text))
            written.append(name)
        encodings[family] = {"file": name, "tokens": len(tokens), "sha256": digest}

    manifest = {
        "source": {
            "package": "maritalk",
            "version": MARITALK_VERSION,
            "wheel": wheel_path.name,
            "wheelSha256": wheel_sha256,
            "modules": FAMILY_MODULES,
        },
        "format": "gzip; one base64 token per line; a token's rank is its line index from 0",
        "normalization": "NFC",
        "pattern": pattern,
        "specialTokens": {},
        "encodings": encodings,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n")
    (args.out / "LICENSE").write_text(licence if licence.endswith("\n") else licence + "\n", encoding="utf-8", newline="\n")
    (args.out / "NOTICE").write_text(notice(wheel_path.name, wheel_sha256, written), encoding="utf-8", newline="\n")

    for family, entry in encodings.items():
        print(f"{family}: {entry['tokens']} tokens -> {entry['file']}")
    shared = len(written) < len(encodings)
    print(f"wrote {len(written)} vocabulary file(s) to {args.out}{' (families share one)' if shared else ''}")


if __name__ == "__main__":
    main()
