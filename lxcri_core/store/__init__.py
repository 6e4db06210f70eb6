"""The local image store: an OCI image layout on disk, content addressed."""

from lxcri_core.store.layout import BlobWriter, ImageRecord, Store

__all__ = ["BlobWriter", "ImageRecord", "Store"]
