"""Helpers the tests share: one-line CLI error checks, tiny model specs, a SeaweedFS S3 server, TensorFlow's own
parse of YT8M records as the reference."""
