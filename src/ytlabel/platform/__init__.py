"""Kubernetes manifests as pure functions (training jobs, KServe) and their offline validation."""
