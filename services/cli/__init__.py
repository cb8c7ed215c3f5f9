"""The `guidepost` command and its printers: run, demo, serve, plot, backtest and the operator's
commands (history, dead letters, alerts, silences, schemas)."""

from services.cli.main import app, main

__all__ = ["app", "main"]
