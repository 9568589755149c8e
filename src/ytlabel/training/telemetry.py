"""Hardware and progress telemetry: Prometheus metrics while training, a usage summary at the end.

Metrics (all labelled with `rank`; names documented in docs/telemetry.md):
    ytlabel_train_videos_per_second       gauge      throughput of the last step
    ytlabel_train_step_seconds            histogram  wall time per optimizer step (data wait included)
    ytlabel_train_data_wait_seconds       histogram  time spent waiting for the next batch
    ytlabel_train_videos_total            counter    training videos consumed
    ytlabel_train_loss                    gauge      loss of the last step
    ytlabel_train_epoch                   gauge      current epoch (0-based)
    ytlabel_process_cpu_percent           gauge      CPU of this process and its children (100 = one core)
    ytlabel_process_resident_memory_bytes gauge      RSS of this process and its children
    ytlabel_gpu_utilization_percent       gauge      NVML, per `gpu` (only when a GPU exists)
    ytlabel_gpu_memory_used_bytes         gauge      NVML, per `gpu`
"""

import threading
import time

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ytlabel.errors import ConfigError

_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Gpus:
    """NVML handles when nvidia-ml-py finds a driver; empty otherwise."""

    def __init__(self):
        self.handles = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # noqa: BLE001 - no library, no driver or no device: CPU-only machine
            self.handles = []

    def sample(self) -> list[tuple[float, float]]:
        """(utilisation %, memory used bytes) per GPU."""
        return [
            (float(self._nvml.nvmlDeviceGetUtilizationRates(h).gpu), float(self._nvml.nvmlDeviceGetMemoryInfo(h).used))
            for h in self.handles
        ]


class Telemetry:
    """Starts the exporter (optional) and a sampler thread; `summary()` gives the per-run usage record."""

    def __init__(self, rank: int, port: int = 0, host: str = "127.0.0.1", interval_s: float = 0.5):
        self.rank = str(rank)
        self.registry = CollectorRegistry()
        labels = ["rank"]
        self.videos_per_second = Gauge(
            "ytlabel_train_videos_per_second", "Training throughput of the last step", labels, registry=self.registry
        )
        self.step_seconds = Histogram(
            "ytlabel_train_step_seconds",
            "Wall time per optimizer step",
            labels,
            buckets=_STEP_BUCKETS,
            registry=self.registry,
        )
        self.data_wait_seconds = Histogram(
            "ytlabel_train_data_wait_seconds",
            "Time waiting for the next batch",
            labels,
            buckets=_STEP_BUCKETS,
            registry=self.registry,
        )
        self.videos_total = Counter("ytlabel_train_videos", "Training videos consumed", labels, registry=self.registry)
        self.loss = Gauge("ytlabel_train_loss", "Loss of the last step", labels, registry=self.registry)
        self.epoch = Gauge("ytlabel_train_epoch", "Current epoch (0-based)", labels, registry=self.registry)
        self.cpu = Gauge(
            "ytlabel_process_cpu_percent",
            "CPU of the trainer and its children (100 = one core)",
            labels,
            registry=self.registry,
        )
        self.rss = Gauge(
            "ytlabel_process_resident_memory_bytes",
            "RSS of the trainer and its children",
            labels,
            registry=self.registry,
        )
        self.gpu_util = Gauge(
            "ytlabel_gpu_utilization_percent", "GPU utilisation (NVML)", labels + ["gpu"], registry=self.registry
        )
        self.gpu_memory = Gauge(
            "ytlabel_gpu_memory_used_bytes", "GPU memory used (NVML)", labels + ["gpu"], registry=self.registry
        )
        self.port = port
        if port:
            try:
                self._server, self._server_thread = start_http_server(self.port, addr=host, registry=self.registry)
            except OSError as error:
                raise ConfigError(
                    f"metrics_port: cannot serve metrics on {host}:{port} ({error.strerror}); "
                    "choose a free port, or 0 for no exporter"
                ) from error
        self._gpus = Gpus()
        self._process = psutil.Process()
        self._cpu_samples: list[float] = []
        self._rss_max = 0.0
        self._gpu_util: list[float] = []
        self._gpu_mem_max = 0.0
        self._data_wait = 0.0
        self._step_time = 0.0
        self._first_wait: float | None = None
        self._first_step = 0.0
        self._stop = threading.Event()
        self._interval = interval_s
        self._last_cpu = self._start_cpu = self._cpu_seconds()
        self._last_time = self._start_time = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def step(self, step_s: float, data_wait_s: float, videos: int, loss: float) -> None:
        self.step_seconds.labels(self.rank).observe(step_s)
        self.data_wait_seconds.labels(self.rank).observe(data_wait_s)
        self.videos_total.labels(self.rank).inc(videos)
        self.videos_per_second.labels(self.rank).set(videos / step_s if step_s > 0 else 0.0)
        self.loss.labels(self.rank).set(loss)
        if self._first_wait is None:  # starts the readers: counted apart, as videos_per_s leaves it out
            self._first_wait, self._first_step = data_wait_s, step_s
            return
        self._data_wait += data_wait_s
        self._step_time += step_s

    def set_epoch(self, epoch: int) -> None:
        self.epoch.labels(self.rank).set(epoch)

    def summary(self) -> dict:
        """The usage record of result.json (GPU fields None without a GPU)."""
        self._sample()
        elapsed = time.monotonic() - self._start_time
        # The mean is exact (CPU seconds over wall seconds since start); the max is the busiest sample.
        mean = 100.0 * (self._cpu_seconds() - self._start_cpu) / elapsed if elapsed > 0 else 0.0
        return {
            "cpu_percent_mean": round(mean, 1),
            "cpu_percent_max": round(max([mean, *self._cpu_samples]), 1),
            "rss_mb_max": round(self._rss_max / 2**20, 1),
            "gpu_util_mean": round(sum(self._gpu_util) / len(self._gpu_util), 1) if self._gpu_util else None,
            "gpu_mem_mb_max": round(self._gpu_mem_max / 2**20, 1) if self._gpus.handles else None,
            "data_wait_share": self._wait_share(),
            "first_batch_wait_s": round(self._first_wait, 3) if self._first_wait is not None else None,
        }

    def _wait_share(self) -> float | None:
        """Data wait over step time after the first step (a one-step run: that step's)."""
        if self._step_time:
            return round(self._data_wait / self._step_time, 4)
        if self._first_step and self._first_wait is not None:
            return round(self._first_wait / self._first_step, 4)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.port:
            self._server.shutdown()
            self._server.server_close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self._process, *self._process.children(recursive=True)]
        except psutil.Error:
            return [self._process]

    def _cpu_seconds(self) -> float:
        """CPU seconds of this process, its live descendants, and the children it already reaped
        (e.g. DataLoader workers of finished epochs)."""
        times = self._process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for process in self._tree()[1:]:
            try:
                child = process.cpu_times()
                total += child.user + child.system
            except psutil.Error:
                continue
        return total

    def _sample(self) -> None:
        now, cpu_seconds = time.monotonic(), self._cpu_seconds()
        elapsed = now - self._last_time
        if elapsed > 0.05:
            percent = max(0.0, 100.0 * (cpu_seconds - self._last_cpu) / elapsed)
            self._cpu_samples.append(percent)
            self.cpu.labels(self.rank).set(percent)
            self._last_cpu, self._last_time = cpu_seconds, now
        rss = 0.0
        for process in self._tree():
            try:
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        self._rss_max = max(self._rss_max, rss)
        self.rss.labels(self.rank).set(rss)
        for index, (util, memory) in enumerate(self._gpus.sample() if self._gpus.handles else []):
            self._gpu_util.append(util)
            self._gpu_mem_max = max(self._gpu_mem_max, memory)
            self.gpu_util.labels(self.rank, str(index)).set(util)
            self.gpu_memory.labels(self.rank, str(index)).set(memory)
