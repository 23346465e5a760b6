"""Tandem on a Ray cluster: Ray places, starts, restarts and stops the learner and simulated actors.

Ray is the process manager only. Transitions and weights keep the acked, CURVE-encrypted ZeroMQ link the
one-machine default uses (the object store would bypass the acks, the exactly-once resend from the actor's
spool and the encryption; see the README's "Scale out" and benchmarks/ray_ingest.py). This package is the
only one that imports ray; `learner --launcher ray` and `benchmarks.one_demo --ray` come here.

- cluster.py   joining a cluster as a driver, finding nodes (GPU first for the learner)
- hosts.py     the Ray actors that each run one Tandem process (learner or actor) and die with it
- launcher.py  RayLauncher: the learner on a chosen node, the fleet spread over the nodes
- run.py       `learner --launcher ray`: one command from the user's terminal to a running fleet
- sweep.py     `benchmarks.one_demo --ray`: a sweep's runs as Ray tasks, their result files merged on the driver
"""
