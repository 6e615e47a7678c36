"""Sync speed against the oracle, on the contract's three payloads, in one go.

    python speed.py [--iterations N]

Times mistral-common 1.13.1 (`encode_chat_completion(ChatCompletionRequest.
from_openai(messages))`, median of N calls after warm-up) and perfwarden's
`apply_mistral_chat_template` (Criterion's median, `cargo bench --bench
wallclock`), then prints the ratios. Targets: at least 5x on medium and large,
3x on small. Run it from harness/corpus with the oracle's virtual environment.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")

from mistral_common.protocol.instruct.request import ChatCompletionRequest  # noqa: E402
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer  # noqa: E402

PAYLOADS = {
    "small": ("Hello " * 50, 3.0),
    "medium": ("Test content " * 5000, 5.0),
    "large": ("Large test content " * 20000, 5.0),
}
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def oracle_median(tokenizer, content, iterations):
    messages = [{"role": "user", "content": content}]
    for _ in range(3):
        tokenizer.encode_chat_completion(ChatCompletionRequest.from_openai(messages))
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        tokenizer.encode_chat_completion(ChatCompletionRequest.from_openai(messages))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e9


def perfwarden_medians():
    with tempfile.TemporaryDirectory() as home:
        subprocess.run(
            ["cargo", "bench", "--bench", "wallclock", "--", "--noplot", "--warm-up-time", "1",
             "--measurement-time", "3", "/sync"],
            cwd=ROOT, check=True, env={**os.environ, "CRITERION_HOME": home},
            stdout=subprocess.DEVNULL,
        )
        medians = {}
        for name in PAYLOADS:
            with open(os.path.join(home, name, "sync", "new", "estimates.json")) as f:
                medians[name] = json.load(f)["median"]["point_estimate"]
        return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    tokenizer = MistralTokenizer.v3()
    oracle = {name: oracle_median(tokenizer, content, args.iterations) for name, (content, _) in PAYLOADS.items()}
    ours = perfwarden_medians()
    print(f"{'payload':<8} {'oracle median':>14} {'perfwarden median':>18} {'speed-up':>9} {'target':>7}")
    for name, (_, target) in PAYLOADS.items():
        ratio = oracle[name] / ours[name]
        verdict = "ok" if ratio >= target else "BELOW TARGET"
        print(f"{name:<8} {oracle[name] / 1e6:>11.3f} ms {ours[name] / 1e6:>15.4f} ms {ratio:>8.1f}x {target:>6.0f}x  {verdict}")


if __name__ == "__main__":
    main()
