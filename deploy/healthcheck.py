"""Container health probe for `guidepost run` and `guidepost serve` alike (standard library only).

With GUIDEPOST_METRICS_PORT set (the workers) it GETs /ready on that port, which answers 200 only
while Redis answers and every subscriber runs; otherwise (the HTTP service) /health on
GUIDEPOST_HTTP_PORT, 8080 by default. Exit status 0 on HTTP 200, else 1 with the reason on
stderr, as Docker's HEALTHCHECK expects.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping

TIMEOUT_S = 3.0


def probe_url(environ: Mapping[str, str]) -> str:
    metrics_port = environ.get("GUIDEPOST_METRICS_PORT")
    if metrics_port:
        return f"http://127.0.0.1:{metrics_port}/ready"
    return f"http://127.0.0.1:{environ.get('GUIDEPOST_HTTP_PORT', '8080')}/health"


def main() -> int:
    url = probe_url(os.environ)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = int(response.status)
    except OSError as error:  # refused, timed out, or an HTTP error status
        print(f"unhealthy: GET {url} failed: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: GET {url} answered {status}, expected 200", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
