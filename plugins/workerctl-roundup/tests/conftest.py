"""The fixtures of roundup_server.py (a real roundup-server on 127.0.0.1, a fault proxy)."""

from roundup_server import fault_proxy, make_tracker_with, roundup_env, tracker, ws

__all__ = ["fault_proxy", "make_tracker_with", "roundup_env", "tracker", "ws"]
