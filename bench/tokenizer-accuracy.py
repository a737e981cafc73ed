"""Recounts `realTokens` in bench/fixtures/prompts.jsonl with Maritaca's own tokenizer, then
runs bench/tokenizer-accuracy.js to compare src/activities/token-estimate.ts against it.

The tokenizer is the `maritalk` package's `count_tokens`. For sabia-3/sabia-4 it builds a
tiktoken encoding from BPE ranks shipped inside the package, so it works offline; the
offline switches below make sure nothing falls back to downloading from a model hub (only
the sabia-2 models would, and they are not used here).

Usage (from the repository root, with a Python that has bench/requirements-tokenizer.txt):
    python bench/tokenizer-accuracy.py            # recount, rewrite the fixture, print the report
    python bench/tokenizer-accuracy.py --no-report
    python bench/tokenizer-accuracy.py --text "Olá, mundo!"   # count one string
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

BENCH_DIR = Path(__file__).resolve().parent
FIXTURE = BENCH_DIR / "fixtures" / "prompts.jsonl"
MODEL = "sabia-4"


def load_count_tokens():
    try:
        from maritalk import count_tokens
        from importlib.metadata import version
    except ImportError:
        sys.exit("maritalk is not installed: pip install -r bench/requirements-tokenizer.txt")
    return count_tokens, version("maritalk")


def recount(path: Path, model: str) -> int:
    count_tokens, maritalk_version = load_count_tokens()
    counted = (
        f"sum over messages of maritalk.count_tokens(content, model='{model}') "
        f"(maritalk {maritalk_version}); content only, no chat-template tokens"
    )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    contents = [m["content"] for row in rows for m in row["messages"]]
    counts = iter(count_tokens(contents, model=model))
    for row in rows:
        per_message = [next(counts) for _ in row["messages"]]
        row["realTokensByMessage"] = per_message
        row["realTokens"] = sum(per_message)
        row["counted"] = counted
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", type=Path, default=FIXTURE)
    parser.add_argument("--model", default=MODEL, help="Maritaca model whose tokenizer counts (default sabia-4)")
    parser.add_argument("--no-report", action="store_true", help="only recount, do not run the JS report")
    parser.add_argument("--text", action="append", help="print the real count of this text and exit")
    args = parser.parse_args()

    if args.text:
        count_tokens, _ = load_count_tokens()
        for text, n in zip(args.text, count_tokens(args.text, model=args.model)):
            print(f"{n}\t{json.dumps(text, ensure_ascii=False)}")
        return

    n = recount(args.fixture, args.model)
    print(f"recounted {n} prompts in {args.fixture.name} with the {args.model} tokenizer", file=sys.stderr)
    if args.no_report:
        return
    node = shutil.which("node")
    if node is None:
        sys.exit("node not found: run `node bench/tokenizer-accuracy.js` where Node is installed")
    sys.exit(subprocess.call([node, str(BENCH_DIR / "tokenizer-accuracy.js"), str(args.fixture)]))


if __name__ == "__main__":
    main()
