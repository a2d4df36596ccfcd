"""The floor: a bare panoramisk FastAGI application that sends the same AGI commands as a
complaint call, with no database and no logic (panoramisk 1.4's own handler).

    python -m bench.floor --port 4700 --sequence commands.json
"""
from __future__ import annotations

import argparse
import asyncio
import json

from panoramisk.fast_agi import Application


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sequence", required=True, help="JSON list of AGI command lines")
    a = ap.parse_args()
    with open(a.sequence) as f:
        sequence = json.load(f)

    async def call(request):
        for command in sequence:
            await request.send_command(command)

    async def serve():
        app = Application(loop=asyncio.get_running_loop())
        app.add_route("favad", call)
        # the same listen backlog as favad serve: the comparison is of the code, not of the socket
        server = await asyncio.start_server(app.handler, "127.0.0.1", a.port, backlog=4000)
        print("listening", flush=True)  # readiness without a probe connection (see bench.run)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
