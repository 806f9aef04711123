"""Hot-path helpers that change how fast things go, never what they do:
pipelined script calls, a reply reader of our own, grouped script calls,
the garbage collector's freezer and its pause meter, freeing transports.
"""
