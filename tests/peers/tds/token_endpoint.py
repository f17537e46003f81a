"""A tiny Entra ID token endpoint for the service-principal flow (test code, stdlib only).

``POST /<tenant>/oauth2/v2.0/token`` (client credentials, what the Fabric adapter sends) and
``POST /<tenant>/oauth2/token`` answer compact JSON ``{"access_token", "expires_in",
"expires_on"}``. Clients are ``client_id -> (secret, principal, expired)``; a wrong secret gets
Entra's ``AADSTS7000215``, an expired one ``AADSTS7000222``, both HTTP 401 ``invalid_client``.
The access token is ``tok-<principal>``, which the TDS peer accepts in LOGIN7.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

Clients = dict[str, tuple[str, str, bool]]


def start(port: int, tenant: str, clients: Clients) -> ThreadingHTTPServer:
    """Serve on 127.0.0.1:``port`` in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            parts = self.path.split("?")[0].strip("/").split("/")
            client = clients.get(form.get("client_id", ""))
            if parts[0] != tenant:
                self._answer(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": f"AADSTS90002: Tenant '{parts[0]}' not found.",
                    },
                )
            elif client is None:
                self._answer(
                    400,
                    {
                        "error": "unauthorized_client",
                        "error_description": "AADSTS700016: Application not found in the directory.",
                    },
                )
            elif form.get("client_secret") != client[0]:
                self._answer(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                )
            elif client[2]:
                self._answer(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000222: The provided client secret keys for app "
                        f"'{form['client_id']}' are expired.",
                    },
                )
            else:
                now = int(time.time())
                self._answer(
                    200,
                    {
                        "token_type": "Bearer",
                        "expires_in": 3599,
                        "expires_on": now + 3599,
                        "access_token": f"tok-{client[1]}",
                    },
                )

        def _answer(self, status: int, body: dict[str, object]) -> None:
            raw = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
