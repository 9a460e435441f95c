"""The front ASGI app: ``/_zeronode/...`` to the admin app, everything else to the AWS app.

The AWS API is served as raw ASGI (streaming bodies with backpressure, paths untouched for
SigV4 and S3 keys); only the agent's own surface goes through quart-trio. The choice is made
on the decoded path: ``/_zeronode`` cannot clash with the AWS API, since no S3 bucket name may
start with ``_`` and the other services use ``/`` or their own versioned prefixes.

The ASGI lifespan (startup/shutdown) is fanned out to both apps: startup runs admin then AWS,
shutdown runs in the reverse order, and a failure of either is reported to the server (which
then stops; the other app's lifespan is cancelled). As the
ASGI spec allows, an app that raises or returns on the lifespan scope without answering is
taken not to support lifespan and is simply skipped.
"""

from __future__ import annotations

import trio

from zeronode.logs import get_logger
from zeronode.node import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/_zeronode"

_log = get_logger(__name__)


class Dispatcher:
    """One ASGI app in front of ``admin_app`` (``/_zeronode...``) and ``aws_app`` (the rest).

    The admin app (quart-trio) gets its sends shielded: see :func:`shield_sends`.
    """

    def __init__(self, aws_app: ASGIApp, admin_app: ASGIApp) -> None:
        self.aws_app = aws_app
        self.admin_app = shield_sends(admin_app)

    def app_for(self, scope: Scope) -> ASGIApp:
        path: str = scope.get("path", "")
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return self.admin_app
        return self.aws_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _fan_out_lifespan((self.admin_app, self.aws_app), scope, receive, send)
        else:
            await self.app_for(scope)(scope, receive, send)


def shield_sends(app: ASGIApp) -> ASGIApp:
    """``app`` with each of its ``send`` calls shielded from the app's own cancellation.

    quart-trio answers in one task and reads ``receive`` in another, and cancels both as soon
    as it sees ``http.disconnect``. hypercorn delivers that disconnect *during* the last
    ``send`` of a response whose connection must close (a ``Connection: close`` request), while
    it is still closing the socket; the cancellation then interrupts the close, and the client
    waits for an end of stream that comes only with ``read_timeout`` (60 s) — holding up a
    graceful shutdown just as long. hypercorn already shields its socket writes, so shielding
    the whole ``send`` adds no new way to block.
    """

    async def app_with_shielded_sends(scope: Scope, receive: Receive, send: Send) -> None:
        async def shielded_send(message: Message) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await app(scope, receive, shielded_send)

    return app_with_shielded_sends


async def _fan_out_lifespan(
    apps: tuple[ASGIApp, ...], scope: Scope, receive: Receive, send: Send
) -> None:
    children = [_ChildLifespan(app) for app in apps]
    async with trio.open_nursery() as nursery:
        for child in children:
            nursery.start_soon(child.run, scope)
        while True:
            phase = (await receive())["type"]  # "lifespan.startup" or "lifespan.shutdown"
            order = children if phase == "lifespan.startup" else list(reversed(children))
            failure: str | None = None
            for child in order:
                reply = await child.deliver({"type": phase})
                if reply is not None and reply["type"] == f"{phase}.failed":
                    failure = str(reply.get("message", ""))
                    break
            if failure is not None:
                # The server stops on a failure; the other apps' lifespans end with it.
                await send({"type": f"{phase}.failed", "message": failure})
                nursery.cancel_scope.cancel()
                return
            await send({"type": f"{phase}.complete"})
            if phase == "lifespan.shutdown":
                return


class _ChildLifespan:
    """One app's lifespan call, fed one message at a time by the dispatcher."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.supported = True
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](1)
        self._reply: Message | None = None
        self._replied = trio.Event()

    async def run(self, scope: Scope) -> None:
        try:
            await self.app(scope, self._app_inbox.receive, self._record_reply)
        except Exception as error:  # noqa: BLE001 - ASGI: raising here means "no lifespan"
            _log.debug("http.lifespan_unsupported", app=type(self.app).__name__, error=repr(error))
        finally:
            self.supported = False
            self._replied.set()

    async def _record_reply(self, message: Message) -> None:
        self._reply = message
        self._replied.set()

    async def deliver(self, message: Message) -> Message | None:
        """Send ``message`` to the app; its reply, or None if it has no (more) lifespan."""
        if not self.supported:
            return None
        # A fresh event *before* the send: if the app ends during the send, ``run`` sets it.
        self._replied = trio.Event()
        self._reply = None
        await self._to_app.send(message)
        await self._replied.wait()
        return self._reply
