"""`git daemon --inetd` behind a listening socket of its own, as systemd socket activation
or xinetd run it: a listen backlog of 1024 instead of the 5 `git daemon` hard-codes, and no
--max-connections cap. One `git daemon --inetd` per connection; this process waits for each,
so their CPU is this process's children's (/proc/PID/stat).

    python benchmarks/_gitinetd.py GIT_DAEMON -- [git daemon options...]

It prints ``listening PORT`` once it accepts connections.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

BACKLOG = 1024


def serve(daemon: str, options: list[str], conn: socket.socket, addr: tuple[str, int]) -> None:
    # git daemon --inetd learns the peer from the environment (for its log and access hook).
    env = {**os.environ, "REMOTE_ADDR": addr[0], "REMOTE_PORT": str(addr[1])}
    with conn:
        subprocess.run(
            [daemon, "--inetd", *options],
            stdin=conn.fileno(),
            stdout=conn.fileno(),
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
        )


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    daemon, options = sys.argv[1], sys.argv[3:]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(BACKLOG)
    print(f"listening {sock.getsockname()[1]}", flush=True)
    while True:
        conn, addr = sock.accept()
        threading.Thread(target=serve, args=(daemon, options, conn, addr), daemon=True).start()


if __name__ == "__main__":
    main()
