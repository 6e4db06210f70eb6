"""Safe layer unpacker: OCI layer tars to a filesystem (whiteouts, id shift)."""
