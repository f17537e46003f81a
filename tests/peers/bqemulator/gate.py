"""An IAM gate in front of bqemulator: service-account sign-in and BigQuery's 401/403 answers.

bqemulator accepts anonymous calls and enforces no IAM, so on its own it can show neither
``auth_failed`` nor ``permission_denied``. This small HTTP server (test code, started by the
fixtures on loopback) plays the two Google services the driver meets before the emulator:

* ``POST /token`` — Google's OAuth token endpoint for a service-account key's ``token_uri``:
  verifies the RS256-signed JWT assertion google-auth sends against the public key
  registered for its ``iss`` (client e-mail) and answers ``invalid_grant`` / "Invalid JWT
  Signature." for an unknown account or a wrong (e.g. deleted) key, as Google does;
* everything else — BigQuery's REST API: a call without a token it issued gets BigQuery's
  401; a CTAS by an account without ``bigquery.tables.create`` gets BigQuery's 403
  ``accessDenied``; the rest is forwarded to the emulator unchanged.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_CTAS = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+`?([^`.\s]+)`?\.`?([^`.\s]+)`?", re.I)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass
class ServiceAccount:
    email: str
    key_json: str
    denied: frozenset[str] = frozenset()
    """Permissions this account lacks (e.g. ``bigquery.tables.create``)."""


@dataclass
class Gate:
    upstream: str
    url: str = ""
    accounts: dict[str, tuple[rsa.RSAPublicKey, frozenset[str]]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def service_account(
        self,
        name: str,
        project: str,
        *,
        denied: frozenset[str] = frozenset(),
        registered: bool = True,
    ) -> ServiceAccount:
        """A fresh key pair; its JSON key points at this gate's token endpoint."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"{name}@{project}.iam.gserviceaccount.com"
        if registered:
            with self.lock:
                self.accounts[email] = (key.public_key(), denied)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        key_json = json.dumps(
            {
                "type": "service_account",
                "project_id": project,
                "private_key_id": secrets.token_hex(8),
                "private_key": pem,
                "client_email": email,
                "client_id": str(secrets.randbelow(10**20)),
                "token_uri": f"{self.url}/token",
            }
        )
        return ServiceAccount(email, key_json, denied)

    # ------------------------------------------------------------------ token endpoint
    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        denied = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        try:
            header, payload, signature = form["assertion"].split(".")
            claims = json.loads(_b64(payload))
            with self.lock:
                public_key, _ = self.accounts[claims["iss"]]
            public_key.verify(
                _b64(signature),
                f"{header}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (KeyError, ValueError, InvalidSignature):
            return 400, denied
        token = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = claims["iss"]
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    # ------------------------------------------------------------------ BigQuery API
    def check(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]] | None:
        """BigQuery's 401/403 for this call, or ``None`` to forward it."""
        auth = headers.get("Authorization", "")
        with self.lock:
            email = self.tokens.get(auth.removeprefix("Bearer ").strip())
            denied = self.accounts.get(email or "", (None, frozenset()))[1]
        if email is None:
            return 401, _error(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                "required",
                "UNAUTHENTICATED",
            )
        if method == "POST" and re.search(r"/projects/[^/]+/jobs$", path) and body:
            query = json.loads(body).get("configuration", {}).get("query", {}).get("query", "")
            ctas = _CTAS.match(query)
            if ctas and "bigquery.tables.create" in denied:
                dataset = f"{ctas.group(1)}:{ctas.group(2)}"
                return 403, _error(
                    403,
                    f"Access Denied: Dataset {dataset}: Permission bigquery.tables.create denied "
                    f"on dataset {dataset} (or it may not exist).",
                    "accessDenied",
                    "PERMISSION_DENIED",
                )
        return None


def _error(code: int, message: str, reason: str, status: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


def _handler(gate: Gate) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(gate.upstream)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, payload: bytes, headers: list[tuple[str, str]]) -> None:
            try:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (e.g. a cancel with a short timeout)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._reply(status, json.dumps(body).encode(), [("Content-Type", "application/json")])

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.command == "POST" and self.path == "/token":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                self._json(*gate.grant(form))
                return
            refused = gate.check(self.command, self.path.split("?")[0], self.headers, body)
            if refused is not None:
                self._json(*refused)
                return
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=300)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                self._reply(response.status, response.read(), response.getheaders())
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_gate(upstream: str) -> Iterator[Gate]:
    """The gate on a free loopback port, forwarding to ``upstream`` (the emulator's REST URL)."""
    gate = Gate(upstream=upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gate))
    server.daemon_threads = True
    gate.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="bq-iam-gate", daemon=True)
    thread.start()
    try:
        yield gate
    finally:
        server.shutdown()
        server.server_close()
