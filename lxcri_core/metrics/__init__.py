"""Metrics: the Prometheus exporter's collectors and the counters other processes feed it.

``counters`` (standard library only, cheap enough for the LXC hooks) keeps
pull and hook counts in a small file per state root; ``catalogue`` names
every metric and its labels; ``container_metrics``, ``counter_metrics`` and
``collectors`` read containers, the counters, the image store and storage
at scrape time; ``server`` serves them over HTTP(S).
"""
