"""A small HTTP batch receiver for the HTTP destination's tests (stdlib only, own process).

``python server.py --port P --key K`` listens on 127.0.0.1:P and accepts ``POST /batches``
with ``Authorization: Bearer K`` (401 otherwise). Rows are stored by ``row_hash`` (so a
re-sent batch changes nothing), and every request is logged.

Control endpoints (no auth, tests only):

* ``POST /_script`` ``[{"status": 429, "retry_after": "1"}, {"status": "pass"}, ...]``: the
  next requests get these answers, in order, instead of being processed (``"pass"``: process
  that request normally; ``"body"``: the JSON answered instead of ``{"error": "scripted"}``,
  e.g. ``{"status": 200, "body": {"rejected": [{"index": 99}]}}``);
* ``POST /_reject`` ``{"field": "external_id", "prefix": "bad", "code": "invalid_field"}``:
  accepted batches refuse rows whose identifier/field value starts with the prefix;
* ``POST /_reset``: forget rows, log, script and rules;
* ``GET /_state``: ``{"rows": {row_hash: row}, "requests": [{"status", "rows", "batch_id",
  "at"}], "rejected": [row_hash, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARRAYS = ("attributes", "events", "purchases", "user_deletes", "catalog_items", "accounts")


class State:
    """Everything the receiver remembers (guarded by one lock)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []
        self.reject: dict[str, Any] | None = None
        self.rejected: list[str] = []


def _value(row: dict[str, Any], field: str) -> Any:
    for holder in (row, row.get("identifier") or {}, row.get("attributes") or {}):
        if isinstance(holder, dict) and field in holder:
            return holder[field]
    return None


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test output is the log

        def _reply(
            self, status: int, body: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def do_GET(self) -> None:
            if self.path != "/_state":
                return self._reply(404, {"error": "not found"})
            with state.lock:
                snapshot = {
                    "rows": state.rows,
                    "requests": state.requests,
                    "rejected": state.rejected,
                }
                return self._reply(200, snapshot)

        def do_POST(self) -> None:
            body = self._body()
            with state.lock:
                if self.path == "/_reset":
                    state.reset()
                    return self._reply(200, {})
                if self.path == "/_script":
                    state.script.extend(body)
                    return self._reply(200, {})
                if self.path == "/_reject":
                    state.reject = body
                    return self._reply(200, {})
                if self.path != "/batches":
                    return self._reply(404, {"error": "not found"})
                rows = next((body[a] for a in ARRAYS if isinstance(body, dict) and a in body), [])
                entry = {
                    "at": time.time(),
                    "rows": len(rows),
                    "batch_id": body.get("batch_id") if isinstance(body, dict) else None,
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                }
                state.requests.append(entry)
                if self.headers.get("Authorization") != f"Bearer {state.key}":
                    entry["status"] = 401
                    return self._reply(401, {"error": "bad key"})
                step = state.script.pop(0) if state.script else {"status": "pass"}
                if step["status"] != "pass":
                    entry["status"] = step["status"]
                    headers = (
                        {"Retry-After": str(step["retry_after"])} if "retry_after" in step else {}
                    )
                    answer = step.get("body", {"error": "scripted"})
                    return self._reply(step["status"], answer, headers)
                rejected = []
                for index, row in enumerate(rows):
                    rule = state.reject
                    value = _value(row, rule["field"]) if rule else None
                    if rule and isinstance(value, str) and value.startswith(rule["prefix"]):
                        rejected.append(
                            {
                                "index": index,
                                "code": rule.get("code", "bad_row"),
                                "message": f"{rule['field']} refused",
                            }
                        )
                        state.rejected.append(row["row_hash"])
                        continue
                    state.rows[row["row_hash"]] = row
                entry["status"] = 200
                return self._reply(200, {"rejected": rejected})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State(args.key)))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
