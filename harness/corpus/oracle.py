"""The oracle: mistral-common 1.13.1's Mistral v3 chat template.

Reads JSONL chat requests ({"messages": [...], "tools": [...]}) and writes, per
line, {"tokens": [...]} or {"error": "<ExceptionType>: <message>"} -- the same
shape `perfwarden tokenize --jsonl` writes.

Needs `pip install mistral-common==1.13.1 sentencepiece` (see README.md in this
folder); it is a development tool and never part of perfwarden itself.
"""

import json
import sys
import warnings

warnings.filterwarnings("ignore")

from mistral_common.protocol.instruct.request import ChatCompletionRequest  # noqa: E402
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer  # noqa: E402

import mistral_common  # noqa: E402

if mistral_common.__version__ != "1.13.1":
    sys.exit(f"the oracle is mistral-common 1.13.1, found {mistral_common.__version__}")

TOKENIZER = MistralTokenizer.v3()


def oracle(request_line: bytes) -> dict:
    """Tokens of one request line, or the error it raises."""
    try:
        request = json.loads(request_line.decode("utf-8"))
        chat = ChatCompletionRequest.from_openai(request["messages"], request.get("tools"))
        return {"tokens": TOKENIZER.encode_chat_completion(chat).tokens}
    except Exception as error:  # every failure is an answer: the request is rejected
        return {"error": f"{type(error).__name__}: {error}"}


def main() -> None:
    # Lines end at b"\n" only, as in `perfwarden tokenize --jsonl`.
    source = open(sys.argv[1], "rb") if len(sys.argv) > 1 else sys.stdin.buffer
    for line in source:
        line = line.removesuffix(b"\n").removesuffix(b"\r")
        sys.stdout.write(json.dumps(oracle(line)) + "\n")


if __name__ == "__main__":
    main()
