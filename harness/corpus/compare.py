"""Compares `perfwarden tokenize --jsonl` with the oracle on a file of requests.

    python compare.py REQUESTS.jsonl [--perfwarden PATH]

REQUESTS.jsonl holds one chat request per line. Prints each line where the two
disagree (different tokens, or only one of them rejects it) and exits 1 if any.
"""

import argparse
import json
import subprocess
import sys

from oracle import oracle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("requests")
    parser.add_argument("--perfwarden", default="target/release/perfwarden")
    args = parser.parse_args()
    with open(args.requests, "rb") as f:
        lines = [line.removesuffix(b"\n").removesuffix(b"\r") for line in f]
    with open(args.requests, "rb") as f:
        ours = subprocess.run([args.perfwarden, "tokenize", "--jsonl", "-"], stdin=f, capture_output=True, check=True)
    results = [json.loads(line) for line in ours.stdout.decode().splitlines()]
    if len(results) != len(lines):
        print(f"perfwarden wrote {len(results)} lines for {len(lines)} requests")
        return 1
    differ = 0
    for number, (line, mine) in enumerate(zip(lines, results), 1):
        theirs = oracle(line)
        same = ("tokens" in mine and mine.get("tokens") == theirs.get("tokens")) or ("error" in mine and "error" in theirs)
        if not same:
            differ += 1
            print(f"line {number}: perfwarden {json.dumps(mine)[:300]}\n    oracle {json.dumps(theirs)[:300]}")
    rejected = sum(1 for r in results if "error" in r)
    print(f"{len(lines)} requests, {rejected} rejected by both where they agree, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
