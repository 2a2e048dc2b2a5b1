"""python-websockets client against a duplex echo server.

Usage: client.py URL SPEC_JSON, SPEC = {"compression": bool, "sizes": [int], "close": [code, reason]}
Runs three connections and reports each as one JSON line:
  1. echo: every size as text and as binary, then ping/pong, then close with SPEC's code/reason;
  2. server-close: asks the server to close with 4001 "go away" and reports what it saw;
  3. done: {"done": true}.
Everything is bounded by timeouts; the script exits by itself.
"""
import asyncio
import json
import sys

import websockets

from common import bytes_of, report, text_of


async def echo(url, spec):
    compression = "deflate" if spec["compression"] else None
    async with websockets.connect(url, compression=compression, max_size=None, open_timeout=5, close_timeout=5) as ws:
        results = []
        for size in spec["sizes"]:
            for kind in ("text", "binary"):
                sent = text_of(size) if kind == "text" else bytes_of(size)
                await ws.send(sent)
                got = await asyncio.wait_for(ws.recv(), 5)
                results.append({
                    "kind": kind,
                    "size": size,
                    "type_ok": isinstance(got, str) == (kind == "text"),
                    "equal": got == sent,
                })
        pong_waiter = await ws.ping(b"python ping")
        await asyncio.wait_for(pong_waiter, 5)  # resolves when the matching pong arrives
        code, reason = spec["close"]
        await ws.close(code=code, reason=reason)
        return {
            "case": "echo",
            "extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
            "negotiated": [type(e).__name__ for e in ws.extensions],
            "results": results,
            "pong": True,
            "close_code": ws.close_code,
            "close_reason": ws.close_reason,
        }


async def server_close(url, spec):
    compression = "deflate" if spec["compression"] else None
    async with websockets.connect(url, compression=compression, open_timeout=5, close_timeout=5) as ws:
        await ws.send("close:4001:go away")
        try:
            await asyncio.wait_for(ws.recv(), 5)
            received = "message"
        except websockets.ConnectionClosed:
            received = "closed"
        await ws.wait_closed()
        return {"case": "server-close", "received": received, "close_code": ws.close_code, "close_reason": ws.close_reason}


async def main():
    url, spec = sys.argv[1], json.loads(sys.argv[2])
    report(await asyncio.wait_for(echo(url, spec), 8))
    report(await asyncio.wait_for(server_close(url, spec), 4))
    report({"done": True})


asyncio.run(main())
