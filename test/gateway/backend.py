"""A team's backend, as the gateway tests see it: Python's standard library only.

It is what docs/backend-hooks.md and docs/server-api.md describe from the backend's side:
- the connect hook: who is this connection? From its session cookie, as a web app would;
- the subscribe hook: members-only rooms (`chat:secret…`) are refused;
- the rpc hook: `whoami`;
- and it publishes through the gateway's server API (urllib, `Authorization: apikey …`).

The test drives it over HTTP on /control/… (configure the API's address, publish, disconnect,
read the hook calls it saw). It prints `ready <port>` once listening, and stops on SIGTERM.
"""

import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSIONS = {
    "s-ada": ("ada", {"name": "Ada"}),
    "s-bob": ("bob", {"name": "Bob"}),
}

state = {"api": None, "key": None, "calls": []}
lock = threading.Lock()


def call_api(method, body, key=None):
    """POST to the gateway's server API; answer (status, parsed body)."""
    request = urllib.request.Request(
        f"{state['api']}/api/{method}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"apikey {key or state['key']}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path
        if path.startswith("/duplex/"):
            with lock:
                state["calls"].append({"hook": path[len("/duplex/"):], "body": body, "cookie": self.headers.get("Cookie")})
        if path == "/duplex/connect":
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            session = cookie["session"].value if "session" in cookie else None
            if session not in SESSIONS:
                return self.answer({"error": {"code": "E_UNAUTHORIZED", "message": "log in first"}})
            user, info = SESSIONS[session]
            return self.answer({"result": {"user": user, "info": info}})
        if path == "/duplex/subscribe":
            if body["topic"].startswith("chat:secret"):
                return self.answer({"error": {"code": "E_FORBIDDEN", "message": "members only"}})
            return self.answer({"result": {}})
        if path == "/duplex/rpc":
            if body["method"] == "whoami":
                return self.answer({"result": {"data": {"user": body["user"], "params": body.get("params")}}})
            return self.answer({"error": {"code": "E_NOT_FOUND", "message": f"no method {body['method']}"}})
        if path == "/control/configure":
            state["api"], state["key"] = body["api"], body["key"]
            return self.answer({})
        if path == "/control/api":
            status, answer = call_api(body["method"], body["body"], body.get("key"))
            return self.answer({"status": status, "body": answer})
        if path == "/control/calls":
            with lock:
                return self.answer({"calls": state["calls"]})
        self.answer({"error": "no such path"}, 404)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
