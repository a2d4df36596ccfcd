"""The units' page and the staff pages (/staff) on waitress, in a thread of its own: `favad web
serve` and `favad serve`."""
from __future__ import annotations

import logging
import threading

from waitress import create_server
from waitress import wasyncore

from config import Settings
from db.engine import make_engine
from web.app import UnitsPage

log = logging.getLogger(__name__)

# A public page: anyone can open connections and send nothing. Waitress's defaults (100
# connections, 120 s before an idle one is closed) let 100 silent sockets take it offline.
PUBLIC = {
    "connection_limit": 1000,  # sockets held at once; more wait in the listen backlog
    "channel_timeout": 15,  # seconds a connection may stay silent (a slow sender included)
    "cleanup_interval": 2,  # how often silent connections are looked for
    "max_request_header_size": 16 * 1024,
    "max_request_body_size": 64 * 1024,  # the forms are small (the app checks again)
    "asyncore_use_poll": True,  # select() breaks past fd 1024, which `favad serve` can reach
}


class Site:
    """The units' page at /, the staff's Flask app at /staff, on one engine."""

    def __init__(self, settings: Settings, engine=None, **staff):
        from werkzeug.middleware.dispatcher import DispatcherMiddleware

        from web.staff import create_app

        self.engine = engine or make_engine(settings.db_url)
        self.units = UnitsPage(settings, self.engine)
        self.staff = create_app(settings, self.engine, **staff)
        self.wsgi = DispatcherMiddleware(self.units, {"/staff": self.staff})

    def __call__(self, environ, start_response):
        return self.wsgi(environ, start_response)


class WebServer:
    """A waitress server bound at construction (so a busy port fails at once), run in a
    thread, stopped with ``stop``."""

    def __init__(self, settings: Settings, host: str | None = None, port: int | None = None,
                 app=None, threads: int = 4, **adjust):
        self.app = app or Site(settings)
        # no access log: the path holds the unit's token; waitress logs only its own errors.
        # asyncore_loop_timeout is whole seconds (waitress int()s it: 0.2 was a busy loop)
        self.server = create_server(self.app, host=host or settings.web_host,
                                    port=settings.web_port if port is None else port,
                                    threads=threads, ident="favad", asyncore_loop_timeout=1,
                                    clear_untrusted_proxy_headers=True, **{**PUBLIC, **adjust})
        self.host, self.port = self.server.getsockname()[:2]
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def start(self) -> "WebServer":
        self.thread.start()
        log.info("units' page on http://%s:%s (staff: /staff)", self.host, self.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the sockets from inside the server's own loop (closing them from this thread
        would pull them from under its select), let it end, then finish the requests."""
        pulled = False
        if self.thread.is_alive():
            try:
                self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
                pulled = True
            except OSError:  # the loop already closed its trigger on its way out
                pass
            self.thread.join(timeout)
        if not pulled:
            wasyncore.close_all(self.server._map)
        self.server.task_dispatcher.shutdown(timeout=timeout)
        self.app.engine.dispose()
