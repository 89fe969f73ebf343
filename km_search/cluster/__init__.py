"""Scale-out on Ray (docs/scale-out.md): connecting to a cluster, and serving a snapshot's shards on
Ray Serve (serving.py). Ray is imported only when a cluster is asked for; ingest's side is
ingest/cluster.py."""
