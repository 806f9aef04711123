"""The clients' doors: the HTTP API, one viewer's WebSocket session, and the
HTTP protocol with a deadline per request head.
"""
