"""The real-time side: the hub of rooms and their fan-out, the frame writer,
the relay between processes, each room's event log and replay, presence
counts and overlay keys. Nothing here moves money.
"""
