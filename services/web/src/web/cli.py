"""`web serve`: the web app on HOST:PORT (8000)."""

from __future__ import annotations

import argparse
import sys

from web.app import SERVICE, VERSION
from web.settings import WebSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SERVICE, description=f"{SERVICE} {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the web app")
    args = parser.parse_args(argv)
    settings = WebSettings()
    from asf_kit.logging import configure

    configure(SERVICE, VERSION, settings.log_level, settings.log_format)
    if args.command == "serve":
        from asf_kit.settings import UnsafeForProduction

        try:
            settings.require_safe_for_production()
        except UnsafeForProduction as e:
            print(e, file=sys.stderr)
            return 2
        import uvicorn

        uvicorn.run("web.app:create_app", factory=True, host=settings.host, port=settings.port,
                    log_config=None, access_log=False, timeout_graceful_shutdown=10,
                    proxy_headers=True)  # trusted proxies: FORWARDED_ALLOW_IPS
    return 0


if __name__ == "__main__":
    sys.exit(main())
