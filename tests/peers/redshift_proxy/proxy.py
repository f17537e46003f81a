"""A Redshift-shaped front for stock PostgreSQL, so ``redshift_connector`` can talk to it.

``redshift_connector`` speaks the PostgreSQL v3 wire protocol but (1) always sends startup
parameters PostgreSQL rejects as unknown settings and (2) parses the ``server_version``
ParameterStatus with ``packaging.version``, which fails on Debian's "15.20 (Debian ...)".
This proxy drops those startup parameters and rewrites ``server_version`` to the plain
number; every other byte passes through untouched (authentication, queries, errors, cancel
requests), so the driver is exercised over its real protocol against a real server.

Standard library only; run it as ``python proxy.py --port P --upstream-port 5432``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import struct
import sys

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

DROPPED_STARTUP_PARAMETERS = frozenset(
    {
        "client_protocol_version",
        "driver_version",
        "os_version",
        "driver_discovery_version",
        "plugin_name",
        "idp_type",
        "provider_name",
        "token_type",
        "identity_namespace",
    }
)
"""Redshift-only startup parameters; PostgreSQL answers FATAL "unrecognized configuration parameter"."""


def rewrite_startup(body: bytes) -> bytes:
    """Drop the Redshift-only ``key\\0value\\0`` pairs from a StartupMessage body (after the version)."""
    version, rest = body[:4], body[4:]
    fields = rest.split(b"\0")
    pairs: list[tuple[bytes, bytes]] = []
    for i in range(0, len(fields) - 1, 2):
        key, value = fields[i], fields[i + 1]
        if not key:
            break
        if key.decode("utf-8", "replace") not in DROPPED_STARTUP_PARAMETERS:
            pairs.append((key, value))
    out = version + b"".join(k + b"\0" + v + b"\0" for k, v in pairs) + b"\0"
    return struct.pack("!I", len(out) + 4) + out


def plain_version(value: bytes) -> bytes:
    """``b"15.20 (Debian 15.20-0+deb12u1)"`` → ``b"15.20"``."""
    match = re.match(rb"\s*(\d+(?:\.\d+)*)", value)
    return match.group(1) if match else value


async def read_startup(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One untyped startup-phase message: (request code or protocol version, whole body)."""
    header = await reader.readexactly(4)
    (length,) = struct.unpack("!I", header)
    body = await reader.readexactly(length - 4)
    (code,) = struct.unpack("!I", body[:4])
    return code, body


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def server_to_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Rewrite ``server_version`` ParameterStatus messages until ReadyForQuery, then pass through."""
    try:
        while True:
            kind = await reader.readexactly(1)
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            if kind == b"S":
                key, _, rest = body.partition(b"\0")
                if key == b"server_version":
                    value = plain_version(rest.rstrip(b"\0"))
                    body = key + b"\0" + value + b"\0"
            writer.write(kind + struct.pack("!I", len(body) + 4) + body)
            await writer.drain()
            if kind in (b"Z", b"E"):
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.close()
        return
    await pump(reader, writer)


async def handle(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    upstream: tuple[str, int],
) -> None:
    try:
        up_r, up_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    try:
        while True:
            code, body = await read_startup(client_r)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                # This peer speaks plaintext only: refuse encryption like a server without SSL.
                client_w.write(b"N")
                await client_w.drain()
                continue
            if code == CANCEL_REQUEST:
                up_w.write(struct.pack("!I", len(body) + 4) + body)
                await up_w.drain()
                up_w.close()
                client_w.close()
                return
            up_w.write(rewrite_startup(body))
            await up_w.drain()
            break
    except (ConnectionError, asyncio.IncompleteReadError):
        up_w.close()
        client_w.close()
        return
    await asyncio.gather(server_to_client(up_r, client_w), pump(client_r, up_w))


async def serve(port: int, upstream: tuple[str, int]) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream), host="127.0.0.1", port=port
    )
    print(f"redshift proxy on 127.0.0.1:{port} -> {upstream[0]}:{upstream[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--upstream-port", type=int, default=5432)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, (args.upstream_host, args.upstream_port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
