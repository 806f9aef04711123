"""Running it: the embedded Valkey server and the local Valkey Cluster."""
