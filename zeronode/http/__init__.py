"""The node's HTTP front: one hypercorn (trio) server, one port, two apps behind a dispatcher.

- :mod:`zeronode.http.dispatch`: the raw-ASGI front that sends ``/_zeronode/...`` to the admin
  app and everything else to the AWS wire layer, and fans the ASGI lifespan out to both.
- :mod:`zeronode.http.admin`: the quart-trio app for the agent's own surface (health, ...).
- :mod:`zeronode.http.server`: hypercorn's trio ``serve()`` with deliberate timeouts, logfmt
  access logs and graceful shutdown.
"""
