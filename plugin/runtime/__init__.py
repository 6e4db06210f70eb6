"""lxcri-runtime: the OCI runtime command line (runc's contract) for containerd."""
