"""``lxcri exporter``: the Prometheus exporter (metrics read at scrape time)."""

from __future__ import annotations

import click

_HELP = """Serve Prometheus metrics of containers, images, storage, pulls and hooks.

\b
Listens on 127.0.0.1:9464 by default (config exporter_listen, env
LXCRI_EXPORTER_LISTEN); metrics are at /metrics and are read from the
backend, the image store and the storage at each scrape. HTTPS with
--tls-cert and --tls-key (config exporter_tls_cert / exporter_tls_key).
There is no built-in basic auth: put a reverse proxy (nginx, caddy) in
front of a loopback exporter for that.

\b
Examples:
  lxcri exporter
  lxcri exporter --listen 0.0.0.0:9464 --tls-cert /etc/lxcri/exp.pem --tls-key /etc/lxcri/exp.key
"""


@click.command(help=_HELP)
@click.option(
    "--listen", metavar="HOST:PORT", help="Address to listen on [default 127.0.0.1:9464]."
)
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="PEM certificate (HTTPS).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM private key (HTTPS).")
def exporter(listen: str | None, tls_cert: str | None, tls_key: str | None) -> None:
    from lxcri_pve.cli.common import get_backend, get_config

    from lxcri_core.errors import ConfigError
    from lxcri_core.metrics.server import parse_listen, serve

    cfg = get_config()
    where = parse_listen(listen or cfg.exporter_listen)
    cert = tls_cert or (str(cfg.exporter_tls_cert) if cfg.exporter_tls_cert else None)
    key = tls_key or (str(cfg.exporter_tls_key) if cfg.exporter_tls_key else None)
    if bool(cert) != bool(key):
        raise ConfigError("--tls-cert and --tls-key go together")
    serve(cfg, get_backend(), where, cert, key)
