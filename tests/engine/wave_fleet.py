"""A fleet of asyncssh servers on 127.0.0.1 in its own process (so a forked, SIGKILLed session can reach it).

Usage: python wave_fleet.py PORT_FILE HOST_KEY AUTHORIZED_KEYS COUNT — each server's commands get HOST_NAME=hN;
the ports are written (one a line) once all listen; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from rollback_tui.loopback.sshd import start_server


async def serve(port_file: Path, host_key: str, authorized: str, count: int) -> None:
    servers = [(await start_server(host_key=host_key, authorized_keys=authorized, env={"HOST_NAME": f"h{n}"}))[0]
               for n in range(1, count + 1)]
    partial = port_file.with_name(port_file.name + ".partial")
    partial.write_text("".join(f"{server.port}\n" for server in servers))
    partial.replace(port_file)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])))
