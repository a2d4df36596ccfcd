"""`favad serve`, `favad agi`, `favad call`, `favad menu check`: the IVR's commands.

asyncio is imported where it is used: `favad agi` (one process per call) must not pay for it
before its first command."""
from __future__ import annotations

import gc
import logging
import signal
import sys

import click

from config import ConfigError
from config.cli import fail, load_settings, setup_logging
from config.files import recordings_folder

log = logging.getLogger("favad")


def _backend(settings, serving: bool = False):
    from ivr.agi_script import CannotStart

    try:
        return _open_backend(settings, serving)
    except CannotStart as e:
        fail(str(e))


def _open_backend(settings, serving: bool = False, snapshot=None):
    """The backend, or ``CannotStart`` saying why in one line (no traceback)."""
    from ivr.agi_script import CannotStart
    from ivr.backend import Backend
    from ivr.menu import MenuError

    try:
        return Backend(settings, serving=serving, snapshot=snapshot)
    except MenuError as e:
        raise CannotStart(str(e)) from None
    except OSError as e:  # a key, the journal or the data folder: often run as the wrong user
        raise CannotStart(f"cannot use {e.filename or 'a file'}: {e.strerror or type(e).__name__} "
                          f"(run as the user that owns favad's files?)") from None
    except Exception as e:  # database unreachable or not upgraded: say so, no traceback
        raise CannotStart(f"cannot open the database ({type(e).__name__}); run `favad db upgrade` "
                          f"first or check database_url") from None


@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 4573).")
@click.option("--dispatch/--no-dispatch", "with_dispatch", default=None,
              help="Deliver complaints to the inspection units from this process too "
                   "(default: the dispatch_in_serve setting, on).")
@click.pass_context
def serve(ctx, host, port, with_dispatch):
    """Run the FastAGI server that answers 128 calls."""
    import asyncio

    settings = load_settings(ctx)
    setup_logging(settings)
    backend = _backend(settings, serving=True)
    try:  # Asterisk writes there, favad reads: 02770 in recordings_group
        recordings_folder(settings.recordings_path, settings.recordings_group)
    except ConfigError as e:
        fail(str(e), 2)
    if with_dispatch is None:
        with_dispatch = bool(settings.dispatch_in_serve)
    tune_gc()
    # the loop waits for the GIL behind the writer's and the executor's threads (a batch, the
    # reference data reloaded): at most 1 ms at a time instead of CPython's 5
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        asyncio.run(_serve(backend, settings, host or settings.listen_host,
                           port or settings.listen_port, with_dispatch))
    except ConfigError as e:  # the dispatcher's channels are misconfigured
        fail(str(e), 2)
    except OSError as e:
        fail(f"cannot listen on {host or settings.listen_host}:{port or settings.listen_port}: {e.strerror}")


SWITCH_INTERVAL = 0.001  # seconds a thread holds the GIL before another may take it


def tune_gc() -> None:
    """Fewer, not longer, collector pauses for a server that holds thousands of calls.

    Every call keeps ~60 tracked objects alive for as long as it lasts (a minute or two), so
    under CPython's default thresholds they are promoted and a full collection walks all of
    them every few seconds: ~100 ms during which no caller is answered, the whole p99 at 2,000
    calls. The call path makes almost no cyclic garbage (checked with gc.DEBUG_SAVEALL), so
    collecting young objects every 5,000 allocations and the old ones 100 times more rarely
    costs no memory worth counting. Measured (bench.run, realistic 2,000): collector time 0.74 s
    -> 0.27 s in 84 s, event-loop stalls over 5 ms 45 -> 20.

    Called once the server is built: what exists then (modules, SQLAlchemy's tables and caches,
    the reference data: ~90,000 objects, over half of the 157,000 a full collection walked at
    1,000 realistic calls) lives as long as the process; ``gc.freeze`` takes it out of every
    later collection."""
    gc.set_threshold(5000, 10, 100)
    gc.collect()
    gc.freeze()


async def _serve(backend, settings, host, port, with_dispatch=True):
    import asyncio

    from ivr.fastagi import FastAgiServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before listening: a stop is never a kill
        loop.add_signal_handler(sig, stop.set)
    server = FastAgiServer(backend, settings.script, settings.max_connections)
    await server.start(host, port)
    metrics = _metrics(backend, server, settings)
    if with_dispatch:  # a single process is a complete system: calls in, messages out
        from dispatch.runner import start_thread

        dispatcher, stop_dispatch = start_thread(settings)
    web = None
    if settings.web_in_serve:  # the units' page, where the links in the messages lead
        from web.server import WebServer

        try:
            web = WebServer(settings).start()
        except (OSError, ValueError) as e:  # calls matter more than the page: answer them anyway
            log.error("units' page not started on %s:%s: %s", settings.web_host, settings.web_port,
                      e.strerror if isinstance(e, OSError) else e)
    click.echo(f"favad: FastAGI on agi://{host}:{port}/{settings.script} "
               f"(database {settings.db_url.split('://')[0]}); Ctrl-C or SIGTERM to stop", err=True)
    await server.serve_until(stop, settings.shutdown_grace)
    if with_dispatch:
        stop_dispatch.set()  # it hands back what it has not sent yet
        await asyncio.to_thread(dispatcher.join, settings.shutdown_grace)
    if web is not None:
        await asyncio.to_thread(web.stop)
    if metrics is not None:
        metrics.stop()
    click.echo("favad: stopped", err=True)


def _metrics(backend, server, settings):
    """/healthz and /metrics on metrics_port, when one is set; a port taken is logged, not fatal."""
    if not settings.metrics_port:
        return None
    from service.metrics import Metrics, MetricsServer

    figures = Metrics(backend)
    figures.attach(server)
    try:
        return MetricsServer(figures, settings.metrics_host, settings.metrics_port).start()
    except OSError as e:
        log.error("metrics not served on %s:%s: %s", settings.metrics_host, settings.metrics_port, e.strerror)
        return None


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1)
@click.pass_context
def agi(ctx, args):
    """Run one call as a classic AGI script on stdin/stdout (AGI(favad-agi,<area code>)).

    Asterisk passes the AGI arguments both on the command line and as agi_arg_N lines;
    the lines are what the call uses.
    """
    from ivr.agi_script import run

    sys.exit(run(lambda: _agi_settings(ctx), _open_backend))


def _agi_settings(ctx):
    """Settings and logging for one classic AGI call; any failure as ``CannotStart``, which
    the script tells Asterisk (a daemonised Asterisk drops its stderr)."""
    from config import load
    from ivr.agi_script import CannotStart

    root = ctx.find_root()
    try:
        settings = root.obj or load(root.params.get("config"))
    except ConfigError as e:
        raise CannotStart(f"configuration: {' '.join(str(e).split())}") from None
    except OSError as e:
        raise CannotStart(f"cannot read the configuration {e.filename or ''}: {e.strerror} "
                          f"(run as the user that owns favad's files?)") from None
    setup_logging(settings)  # stdout is the AGI channel; stderr (redacted) goes to Asterisk's log
    return settings


@click.command()
@click.option("--host", default=None, help="FastAGI server (default: the configured listen host).")
@click.option("--port", type=int, default=None)
@click.option("--province", default="28", show_default=True,
              help="Area code passed as agi_arg_1, as the dialplan would; '' to be asked.")
@click.option("--digits", default=None,
              help="Keys to press, in groups typed at each question: '1 280101# 1 4 2 1'. "
                   "'-' stays silent for one question. Without it, keys are read from the keyboard.")
@click.option("--speak", is_flag=True, help="Say something when asked to record.")
@click.option("--lang", default=None, metavar="CODE",
              help="The language the dialplan sets before the IVR answers (default: the "
                   "province's first, as `favad dialplan render` writes it).")
@click.pass_context
def call(ctx, host, port, province, digits, speak, lang):
    """Place a simulated call to a running server and print what the caller hears, in the
    language the channel speaks at each prompt."""
    import asyncio

    from ivr.catalog import languages
    from pbxsim.caller import Caller
    from pbxsim.fastagi import run_call

    settings = load_settings(ctx)
    if lang is not None and lang not in languages():
        fail(f"unknown language {lang!r}: one of {', '.join(languages())}", 2)
    lang = lang or _province_language(settings, province)
    texts: dict[str, dict[str, str]] = {}

    def on_heard(name: str, language: str) -> None:
        prompt = name.removeprefix("favad/")
        if language not in texts:
            texts[language] = _texts(settings, language)
        click.echo(f"  🔊 [{language}] {texts[language].get(prompt, prompt)}")

    def ask(_name: str) -> str:
        return click.prompt("  ⌨ keys (Enter = silence)", default="-", show_default=False).strip() or "-"

    caller = Caller(digits or "", speak=speak, interactive=None if digits is not None else ask)
    try:
        result = asyncio.run(run_call(host or settings.listen_host, port or settings.listen_port,
                                      script=settings.script, args=(province,) if province else (),
                                      caller=caller, sounds_dir=settings.sounds_path,
                                      language=lang, on_heard=on_heard))
    except (ConnectionError, OSError) as e:
        fail(f"no FastAGI server at {host or settings.listen_host}:{port or settings.listen_port} "
             f"({e.strerror or e}); start one with `favad serve`")
    click.echo(f"call ended: AGISTATUS={result.agistatus}"
               + (f", FAVAD_NEXT={result.variables['FAVAD_NEXT']}" if "FAVAD_NEXT" in result.variables else ""))


def _texts(settings, language: str = "fa") -> dict[str, str]:
    from db.engine import make_engine, make_sessionmaker
    from ivr.catalog import full_catalog, offers, spoken, static_catalog

    try:
        with make_sessionmaker(make_engine(settings.db_url))() as s:
            return full_catalog(s, language)
    except Exception:
        persian = {**static_catalog(), **{pid: e.text for pid, e in offers().items()}}
        return {pid: e.text for pid, e in spoken(language, persian).items()}


def _province_language(settings, province: str) -> str:
    """The province's default language, as the generated dialplan sets it (Persian if unknown)."""
    from sqlalchemy import select

    from db.engine import make_engine, make_sessionmaker
    from db.models import Province

    try:
        with make_sessionmaker(make_engine(settings.db_url))() as s:
            langs = s.scalar(select(Province.languages).where(Province.area_code == province))
    except Exception:
        langs = None
    return (langs or "fa").split(",")[0].strip() or "fa"


@click.group()
def reference():
    """The reference data's snapshot, which classic AGI starts from."""


@reference.command("snapshot")
@click.pass_context
def reference_snapshot(ctx):
    """Write <data_dir>/reference.json from the database now (a timer's job where only
    classic AGI runs; `favad serve` rewrites it every 30 s)."""
    from ivr.reference import refresh_snapshot
    from ivr.snapshot import FILE, MAX_AGE

    settings = load_settings(ctx)
    setup_logging(settings)
    try:
        snap = refresh_snapshot(settings, forget_on_failure=False)
    except OSError as e:
        fail(f"{e} (run as the user that owns favad's files?)")
    except Exception as e:
        fail(f"cannot read the reference data ({type(e).__name__}): run `favad db upgrade` first "
             f"or check database_url; the snapshot was left as it was")
    click.echo(f"{settings.data_dir}/{FILE}: {len(snap.provinces)} provinces, {len(snap.agencies)} agencies, "
               f"{len(snap.offices)} offices, {len(snap.indicators)} indicators (trusted for "
               f"{MAX_AGE:.0f} s: rewrite it at least every minute)")


@click.group()
def menu():
    """The menu configuration."""


@menu.command("check")
@click.pass_context
def menu_check(ctx):
    """Validate the menu file and list the prompts it needs."""
    from ivr.catalog import static_catalog
    from ivr.menu import MenuError, load_menu

    settings = load_settings(ctx)
    try:
        m = load_menu(settings.menu_file or None)
    except MenuError as e:
        fail(str(e))
    missing = sorted(i for i in m.prompt_ids() if i not in static_catalog())
    if missing:
        fail(f"{m.source}: prompts without a text in the catalog: {', '.join(missing)}")
    _check_languages(m)
    click.echo(f"{m.source}: ok, {len(m.prompt_ids())} prompts")


def _check_languages(m) -> None:
    """Each language's catalog against Persian's: what it lacks is said in Persian (a warning);
    a key for a language 128 does not know is an error."""
    from ivr.catalog import PERSIAN, languages, missing, static_catalog, with_catalog

    keyed = m.keys("language") if "language" in m.data else {}
    unknown = sorted(set(keyed.values()) - set(languages()))
    if unknown:
        fail(f"{m.source}: [language.keys] names languages not in ivr/languages.toml: {', '.join(unknown)}")
    ids = m.prompt_ids() | set(static_catalog())
    for code in languages():
        if code == PERSIAN:
            continue
        if code not in with_catalog():
            click.echo(f"{code}: no catalog (ivr/catalog.{code}.toml): every prompt said in Persian")
            continue
        lacking = missing(code, ids)
        click.echo(f"{code}: " + (f"{len(lacking)} prompt(s) said in Persian: {', '.join(lacking)}"
                                  if lacking else f"all {len(ids)} prompts"))



@click.group()
def journal():
    """The local journal of complaints taken while the database was away, and its quarantine."""


def _journal(settings):
    from pathlib import Path

    from ivr.journal import Journal

    return Journal(Path(settings.data_dir) / "journal")


@journal.command("replay")
@click.pass_context
def journal_replay(ctx):
    """Move journaled complaints and call records into the database (exactly once)."""
    settings = load_settings(ctx)
    setup_logging(settings)
    backend = _backend(settings)
    done, left = backend.replay_journal()
    held = len(backend.journal.quarantined())
    click.echo(f"{done} journal entries stored, {left} left"
               + (f", {held} in quarantine (favad journal list)" if held else ""))
    if left:
        sys.exit(1)


@journal.command("list")
@click.pass_context
def journal_list(ctx):
    """List the entries waiting for the database and those in quarantine, with the reason."""
    j = _journal(load_settings(ctx))
    pending, held = j.pending(), j.quarantined()
    click.echo(f"{len(pending)} waiting for the database, {len(held)} in quarantine")
    for path in pending:
        click.echo(f"  waiting     {path.name}")
    for q in held:
        click.echo(f"  quarantine  {q.name}  {q.reason}")


@journal.command("show")
@click.argument("name")
@click.pass_context
def journal_show(ctx, name):
    """Print one entry (and why it is in quarantine, if it is)."""
    import json

    j = _journal(load_settings(ctx))
    try:
        path = j.find(name)
        text = path.read_bytes().decode("utf-8", errors="replace")
    except (LookupError, OSError) as e:
        fail(str(e) if isinstance(e, LookupError) else f"cannot read {name}: {e.strerror}")
    try:
        text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except ValueError:
        pass  # shown as it is: that may be why it is in quarantine
    held = {q.name: q.reason for q in j.quarantined()}
    click.echo(f"{path.name}: " + (f"in quarantine: {held[path.name]}" if path.name in held
                                   else "waiting for the database"))
    click.echo(text)


@journal.command("retry")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every entry in quarantine.")
@click.pass_context
def journal_retry(ctx, names, everything):
    """Put entries in quarantine back in the journal and replay it (after fixing their cause)."""
    settings = load_settings(ctx)
    setup_logging(settings)
    j = _journal(settings)
    names = [q.name for q in j.quarantined()] if everything else list(names)
    if not names:
        fail("name the entries to retry (favad journal list), or --all")
    backend = _backend(settings)  # the database first: without it nothing moves
    try:
        names = [j.release(n).name for n in names]
    except (LookupError, OSError) as e:
        fail(str(e) if isinstance(e, LookupError) else f"cannot move it back: {e.strerror}")
    done, left = backend.replay_journal()
    again = [q for q in backend.journal.quarantined() if q.name in names]
    click.echo(f"{len(names)} back in the journal: {done} journal entries stored, {left} left, "
               f"{len(again)} in quarantine again")
    for q in again:
        click.echo(f"  {q.name}  {q.reason}")
    if again or left:
        sys.exit(1)


@journal.command("discard")
@click.argument("names", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.pass_context
def journal_discard(ctx, names, yes):
    """Delete entries in quarantine for good (a complaint discarded is lost)."""
    j = _journal(load_settings(ctx))
    try:
        paths = [j.find(n) for n in names]
    except LookupError as e:
        fail(str(e))
    if not yes:
        click.confirm(f"Delete {len(paths)} quarantined journal entries for good?", abort=True)
    for path in paths:
        try:
            j.discard(path.name)
        except (LookupError, OSError) as e:
            fail(str(e) if isinstance(e, LookupError) else f"cannot delete {path.name}: {e.strerror}")
        click.echo(f"discarded {path.name}")
