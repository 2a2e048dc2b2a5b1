"""python-websockets echo server for a duplex client.

Usage: server.py SPEC_JSON, SPEC = {"compression": bool, "connections": int}
Prints {"port": N} once listening on 127.0.0.1, echoes every message, closes with CODE/REASON
when it receives the text "close:CODE:REASON", and reports each finished connection as
{"event": "closed", ...}. Exits after SPEC's number of connections, or after 8 s at the latest.
"""
import asyncio
import json
import sys

import websockets

from common import report


async def main():
    spec = json.loads(sys.argv[1])
    remaining = spec["connections"]
    all_done = asyncio.get_running_loop().create_future()

    async def handler(ws):
        nonlocal remaining
        messages = 0
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("close:"):
                    _, code, reason = message.split(":", 2)
                    await ws.close(code=int(code), reason=reason)
                    break
                messages += 1
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        report({
            "event": "closed",
            "messages": messages,
            "close_code": ws.close_code,
            "close_reason": ws.close_reason,
            "extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
        })
        remaining -= 1
        if remaining == 0 and not all_done.done():
            all_done.set_result(None)

    compression = "deflate" if spec["compression"] else None
    async with websockets.serve(handler, "127.0.0.1", 0, compression=compression, max_size=None, close_timeout=5) as server:
        port = server.sockets[0].getsockname()[1]
        report({"port": port})
        try:
            await asyncio.wait_for(all_done, 8)
        except asyncio.TimeoutError:
            report({"event": "timeout", "remaining": remaining})


asyncio.run(main())
