"""A minimal SSH bastion for tests: public-key logins for one user, local port forwarding.

Run from its own virtualenv (``.peers/sshd``, see install.sh)::

    python server.py --port P --user zc --authorized-keys keys.pub --host-key-out host.pub

It generates a fresh ed25519 host key, writes its public line to ``--host-key-out`` (so a
client can pin it), accepts only the keys listed in ``--authorized-keys`` for ``--user``,
refuses passwords and shells, and allows direct-tcpip forwards to 127.0.0.1 only (like
``PermitOpen 127.0.0.1:*``). Each accepted forward is logged on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

import asyncssh


class Bastion(asyncssh.SSHServer):
    def __init__(self, user: str) -> None:
        self._user = user

    def begin_auth(self, username: str) -> bool:
        return True  # always require authentication

    def password_auth_supported(self) -> bool:
        return False

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        allowed = dest_host in ("127.0.0.1", "localhost")
        print(f"forward {dest_host}:{dest_port} {'allowed' if allowed else 'refused'}", flush=True)
        return allowed


async def serve(args: argparse.Namespace, host_key: asyncssh.SSHKey) -> None:
    keys = asyncssh.read_authorized_keys(args.authorized_keys)

    def factory() -> Bastion:
        return Bastion(args.user)

    server = await asyncssh.listen(
        "127.0.0.1",
        args.port,
        server_host_keys=[host_key],
        server_factory=factory,
        authorized_client_keys=keys,
        allow_scp=False,
    )
    print(f"sshd on 127.0.0.1:{args.port}", flush=True)
    await server.wait_closed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--authorized-keys", required=True)
    parser.add_argument("--host-key-out", required=True)
    args = parser.parse_args()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    Path(args.host_key_out).write_text(host_key.export_public_key("openssh").decode())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args, host_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
