"""The AWS wire layer: SigV4, protocol codecs driven by botocore's models, errors, routing.

Everything here is sans-I/O except ``asgi.py``, the thin trio/ASGI shell around it.
"""
