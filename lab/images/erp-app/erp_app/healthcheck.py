"""The ``healthcheck`` command: a tiny HTTP GET for Docker HEALTHCHECK (no curl in the image)."""

import http.client

TIMEOUT_SECONDS = 3.0


def check(port: int, path: str = "/health/live") -> tuple[bool, str]:
    """GET http://127.0.0.1:<port><path>; healthy on any 2xx. Returns (ok, one-line summary).

    http.client rather than urllib so proxy variables in the environment never apply.
    """
    if not path.startswith("/"):
        path = "/" + path
    target = f"http://127.0.0.1:{port}{path}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        conn.request("GET", path, headers={"User-Agent": "erp-app-healthcheck"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{target}: {exc}"
    finally:
        conn.close()
    return 200 <= status < 300, f"{target}: HTTP {status}"
