"""The server's domain metrics, beside KServe's own request histograms on `/metrics`."""

from prometheus_client import Counter, Histogram

PREDICTIONS = Counter("ytlabel_predictions", "Videos answered, by the genre ranked first", ["model", "genre"])
FRAMES = Histogram(
    "ytlabel_request_frames",
    "Frames per video in frame-level requests (as sent)",
    ["model"],
    buckets=(1, 10, 30, 60, 120, 180, 240, 300),
)
VIDEOS = Histogram(
    "ytlabel_request_videos", "Videos per request", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
REJECTED = Counter("ytlabel_rejected_requests", "Requests refused with 400, by protocol", ["model", "protocol"])
FORWARD_VIDEOS = Histogram(
    "ytlabel_forward_videos",
    "Videos per forward pass (requests batched together)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
