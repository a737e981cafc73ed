"""The seed library's own batch call against the fake server, timed inside Python.

Prints one JSON line: {"seconds": ..., "ok": ...}. Run with the tools venv's Python after
`pip install langchain-maritaca`.
"""

import argparse
import asyncio
import json
import time

from langchain_core.messages import HumanMessage
from langchain_maritaca import ChatMaritaca


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args()

    model = ChatMaritaca(api_key=args.api_key, base_url=args.base_url, model="sabia-4", max_tokens=30, max_retries=0)
    inputs = [[HumanMessage(content=f"Pergunta {i}")] for i in range(args.n)]
    started = time.perf_counter()
    results = await model.abatch_with_concurrency(inputs, max_concurrency=args.concurrency, return_exceptions=True)
    seconds = time.perf_counter() - started
    ok = sum(1 for r in results if not isinstance(r, BaseException))
    print(json.dumps({"seconds": seconds, "ok": ok}))


asyncio.run(main())
