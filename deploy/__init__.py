"""Deployment: Prometheus, Grafana, Docker, systemd files, and the Ray launcher (deploy/ray, the only Ray importer)."""
