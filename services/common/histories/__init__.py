"""Histories one worker writes and others read: the fact history and the guidance history.

The ingest worker records both; the forecast and guidance workers, the API and the operator's
commands read them. They live below the workers so none of those imports the ingest worker.
"""
