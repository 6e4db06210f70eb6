"""Every metric family the exporter can produce, with its labels.

The Grafana dashboard's test checks each of its expressions against this
catalogue, and the live tests check the exporter's output against it: a
metric added to a collector is added here too.
"""

from __future__ import annotations

CT_LABELS = ("vmid", "name", "image", "node")

#: Every metric family the exporter can produce, name -> its label names (the
#: Grafana dashboard's test checks its expressions against this). Histograms and
#: counters are named here without their _bucket/_sum/_count/_total suffix.
METRICS: dict[str, tuple[str, ...]] = {
    "lxcri_container_info": (*CT_LABELS, "id", "backend", "image_digest"),
    "lxcri_container_state": (*CT_LABELS, "state"),
    "lxcri_container_health": (*CT_LABELS, "health"),
    "lxcri_container_restarts": CT_LABELS,
    "lxcri_container_cpu_seconds": CT_LABELS,
    "lxcri_container_memory_usage_bytes": CT_LABELS,
    "lxcri_container_memory_limit_bytes": CT_LABELS,
    "lxcri_container_pids": CT_LABELS,
    "lxcri_container_pids_limit": CT_LABELS,
    "lxcri_container_network_receive_bytes": CT_LABELS,
    "lxcri_container_network_transmit_bytes": CT_LABELS,
    "lxcri_images": ("node",),
    "lxcri_image_blobs": ("node",),
    "lxcri_image_blob_bytes": ("node",),
    "lxcri_image_pulls": ("registry", "node"),
    "lxcri_image_pull_errors": ("registry", "node"),
    "lxcri_image_pull_duration_seconds": ("node", "le"),
    "lxcri_hook_runs": ("hook", "node"),
    "lxcri_hook_failures": ("hook", "node"),
    "lxcri_hook_duration_seconds": ("hook", "node", "le"),
    "lxcri_storage_size_bytes": ("storage", "type", "node"),
    "lxcri_storage_used_bytes": ("storage", "type", "node"),
    "lxcri_storage_available_bytes": ("storage", "type", "node"),
    "lxcri_zfs_dataset_used_bytes": ("dataset", "node"),
    "lxcri_zfs_dataset_referenced_bytes": ("dataset", "node"),
    "lxcri_collector_up": ("collector",),
    "lxcri_collector_duration_seconds": ("collector",),
    "lxcri_exporter_collections": (),
}
