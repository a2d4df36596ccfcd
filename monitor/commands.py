"""`favad monitor`: what is happening now, for the operators of the 128 center.

Live calls come from Asterisk over AMI (CoreShowChannels, QueueStatus, QueueSummary, then the
events in between); the pipeline from the database. Losing AMI is shown, never fatal: the view
keeps the database half and the client reconnects with backoff.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time

import click

from config.cli import load_settings, setup_logging

RENDER_EVERY = 0.5  # seconds: events show up between two full refreshes


async def _refresh_ami(ami, state, queue: str) -> None:
    """The calls, then the queues: a queue list that fails (no app_queue, a slow answer) costs
    the queue section only. A lost connection costs the whole Asterisk half."""
    from ami import AmiError, AmiUnavailable

    only = {"Queue": queue} if queue else {}
    state.load_calls(await ami.list_action({"Action": "CoreShowChannels"}), time.time())
    try:
        status = await ami.list_action({"Action": "QueueStatus", **only})
        summary = await ami.list_action({"Action": "QueueSummary", **only})
    except AmiUnavailable:
        raise
    except AmiError as e:
        state.queues_failed(str(e))
    else:
        state.load_queues(status, summary, time.time())


def _ami_part(ami, state, error: str | None) -> dict:
    if error is not None:
        return {"status": "unavailable", "error": error, "retry_in_s": ami.retry_in}
    return {"status": "ok", "error": None, **state.snapshot(time.time())}


def _database(settings):
    from db.engine import make_engine, make_sessionmaker

    engine = make_engine(settings.db_url)
    return engine, make_sessionmaker(engine)


def _db_part(Session) -> dict:
    from monitor.pipeline import snapshot

    return snapshot(Session, dt.datetime.now(dt.timezone.utc))


def _snap(ami_part: dict, db_part: dict) -> dict:
    return {"at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "ami": ami_part, "database": db_part}


async def _once(settings) -> dict:
    from ami import AmiClient, AmiError
    from monitor.live import LiveState

    engine, Session = _database(settings)
    state = LiveState(settings.operator_queue)
    ami = AmiClient.from_settings(settings, events=False)
    error = None
    try:
        await _refresh_ami(ami, state, settings.operator_queue)
    except AmiError as e:
        error = str(e)
    finally:
        await ami.logoff()
    try:
        return _snap(_ami_part(ami, state, error), await asyncio.to_thread(_db_part, Session))
    finally:
        engine.dispose()


async def _live(settings, interval: float, console) -> None:
    from rich.live import Live

    from ami import AmiClient, AmiError
    from monitor.live import LiveState
    from monitor.view import render

    engine, Session = _database(settings)
    state = LiveState(settings.operator_queue)
    ami = AmiClient.from_settings(settings, events=True)
    ami.register_event("*", lambda _m, event: state.apply(event, time.time()))
    ami.connect()
    error, db_part, next_refresh = None, {"status": "loading"}, 0.0
    try:
        with Live(render(_snap({"status": "connecting"}, db_part)), console=console,
                  refresh_per_second=4, redirect_stderr=True) as live:
            setup_logging(settings, sys.stderr)  # now Rich's proxy: log lines print above the view
            while True:
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + interval
                    try:
                        await _refresh_ami(ami, state, settings.operator_queue)
                        error = None
                    except AmiError as e:
                        error = str(e)
                        state.clear()  # stale calls would mislead
                    db_part = await asyncio.to_thread(_db_part, Session)
                live.update(render(_snap(_ami_part(ami, state, error), db_part)))
                await asyncio.sleep(RENDER_EVERY)
    finally:
        ami.close()
        engine.dispose()


@click.command()
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@click.option("--json", "as_json", is_flag=True, help="One snapshot as JSON (implies --once).")
@click.option("--interval", type=click.FloatRange(0.5, 3600), default=2.0, show_default=True,
              help="Seconds between two full refreshes.")
@click.pass_context
def monitor(ctx, once, as_json, interval):
    """Live view: calls in the IVR, the operator queue, complaints against the SLA, the outbox."""
    from rich.console import Console

    settings = load_settings(ctx)
    if once or as_json:
        setup_logging(settings, sys.stderr)
        snap = asyncio.run(_once(settings))
        if as_json:
            click.echo(json.dumps(snap, ensure_ascii=False, indent=2))
        else:
            from monitor.view import render

            Console(width=max(Console().width, 120)).print(render(snap))
        return
    try:
        asyncio.run(_live(settings, interval, Console()))
    except KeyboardInterrupt:
        pass
