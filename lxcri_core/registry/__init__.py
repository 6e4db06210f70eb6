"""Registry client: the OCI distribution spec (pull, push, auth)."""
