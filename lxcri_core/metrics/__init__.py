"""Metrics: the Prometheus exporter's collectors and the counters other processes feed it.

``counters`` (no third-party import, cheap enough for the LXC hooks) keeps
pull and hook counts in a small file per state root; ``collectors`` reads
containers, the image store, storage and those counters at scrape time;
``server`` serves them over HTTP.
"""
