"""What a GPU changes, in one command for a lent device: `python benchmarks/gpu.py [--out FILE]`.

Runs in well under 5 minutes and prints JSON (also written to --out). Every figure is the median of
`--repeats` timed runs after a warm-up, with its min and max, against its baseline in the same run:

  transfer  a frame-level batch (default 64 videos x 300 frames) reaching the device three ways: float32
            from pageable memory (what the CPU unpack makes, copied as is), float32 from pinned memory
            without blocking, and packed (uint8 codes and label ids) pinned, copied and unpacked on the
            device (`torch_feed.unpack_on`, what the trainer does on a GPU). The device's unpack is checked
            against the numpy one (`max_abs_difference`, 0 when bit for bit).
  steps     training steps (forward, BCE, backward, Adam) of fc (video level) and bilstm (frame level,
            150 frames) at the presets' widths, with AMP off and on: videos/s, ms per step and peak device
            memory. NVML's busy % and memory are sampled while they run.

Without a GPU (`--device cpu`, the default when CUDA is absent) the same code runs on the CPU: copies
are no-ops, AMP rows say why they were skipped, and the figures are only a check that the script works.
"""

import argparse
import functools
import json
import platform
import statistics
import threading
import time

import numpy as np
import torch

from ytlabel.config import default_preset, load_config
from ytlabel.data import examples, schema
from ytlabel.data.examples import InputOptions
from ytlabel.models import torch as torch_models
from ytlabel.training.telemetry import Gpus
from ytlabel.training.torch_feed import unpack_on


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64, help="videos per batch")
    parser.add_argument("--frames", type=int, default=300, help="frames per video in the transfer batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median, min, max)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed run")
    parser.add_argument(
        "--small", action="store_true", help="tiny models and batches: checks the script, not the device"
    )
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    started = time.perf_counter()
    sampler = NvmlSampler()
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "date": time.strftime("%Y-%m-%d"),
        "settings": vars(args),
        "transfer": transfer(device, args.batch, args.frames, args.repeats),
        "steps": steps(device, args, sampler),
    }
    result["nvml"] = sampler.stop()
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    return result


def packed_frames(videos: int, frames: int, seed: int = 0) -> tuple[dict, InputOptions]:
    """A packed frame-level batch of random codes and labels, videos of 1..frames frames."""
    rng = np.random.default_rng(seed)
    options = InputOptions(max_frames=frames)
    counts = rng.integers(1, frames + 1, videos)
    rgb = rng.integers(0, 256, (videos, frames, schema.RGB_DIM), dtype=np.uint8)
    audio = rng.integers(0, 256, (videos, frames, schema.AUDIO_DIM), dtype=np.uint8)
    padding = np.arange(frames)[None, :] >= counts[:, None]
    rgb[padding], audio[padding] = 0, 0
    label_counts = rng.integers(1, 6, videos)
    label_ids = rng.integers(0, schema.NUM_CLASSES, int(label_counts.sum()))
    return {
        "rgb_codes": rgb,
        "audio_codes": audio,
        "num_frames": counts.astype(np.int64),
        "label_ids": label_ids.astype(np.int64),
        "label_counts": label_counts.astype(np.int64),
    }, options


def transfer(device: torch.device, videos: int, frames: int, repeats: int) -> dict:
    packed, options = packed_frames(videos, frames)
    unpacked = {key: torch.from_numpy(value) for key, value in examples.unpack_batch(packed, options).items()}
    pinned = {key: value.pin_memory() for key, value in unpacked.items()} if device.type == "cuda" else unpacked
    cuda = device.type == "cuda"

    def pageable():
        return {key: value.to(device) for key, value in unpacked.items()}

    def pinned_copy():
        return {key: value.to(device, non_blocking=cuda) for key, value in pinned.items()}

    def on_device():
        return unpack_on(packed, options, device)

    def cpu_unpack_then_copy():
        arrays = examples.unpack_batch(packed, options)
        return {key: torch.from_numpy(value).to(device, non_blocking=cuda) for key, value in arrays.items()}

    rows = {
        name: timed(function, device, repeats)
        for name, function in (
            ("float32_pageable", pageable),
            ("float32_pinned", pinned_copy),
            ("cpu_unpack_then_copy", cpu_unpack_then_copy),
            ("packed_unpack_on_device", on_device),
        )
    }
    for row in rows.values():
        row["videos_per_s"] = round(videos / (row["ms"] / 1000), 1)
    got = on_device()
    difference = max(float((got[key].cpu() - unpacked[key]).abs().max()) for key in unpacked)
    return {
        "videos": videos,
        "frames": frames,
        "bytes": {
            "float32": sum(value.nbytes for value in unpacked.values()),
            "packed": sum(value.nbytes for value in packed.values()),
        },
        "rows": rows,
        "max_abs_difference": difference,
        "packed_vs_cpu_unpack_then_copy": round(
            rows["cpu_unpack_then_copy"]["ms"] / rows["packed_unpack_on_device"]["ms"], 2
        ),
    }


def steps(device: torch.device, args, sampler: "NvmlSampler") -> list[dict]:
    rows = []
    small = {
        "fc": ["model.rgb_hidden=16", "model.audio_hidden=8", "model.head_hidden=16"],
        "bilstm": ["model.hidden=8", "max_frames=10"],
    }
    for arch in ("fc", "bilstm"):
        config = load_config(arch, "torch", "-", "-", default_preset(arch, None), small[arch] if args.small else ())
        options = InputOptions(level=config.level, max_frames=config.max_frames)
        batch = training_batch(options, args.batch, device)
        for amp in (False, True):
            row = {"arch": arch, "amp": amp}
            if amp and device.type != "cuda":
                rows.append(
                    {**row, "skipped": "AMP trains in float16 on CUDA only (the trainer warns and uses float32)"}
                )
                continue
            torch.manual_seed(0)
            model = torch_models.build(arch, config.spec()).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            scaler = torch.amp.GradScaler("cuda", enabled=amp)
            run_steps = functools.partial(train_steps, model, optimizer, scaler, batch, amp, device, args.steps)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sampler.mark(f"{arch}_amp_{amp}")
            timing = timed(run_steps, device, args.repeats)
            loss = run_steps().item()
            row.update(
                ms_per_step=round(timing["ms"] / args.steps, 3),
                spread=timing["spread"],
                videos_per_s=round(args.batch * args.steps / (timing["ms"] / 1000), 1),
                final_loss=round(loss, 4),
                peak_memory_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                if device.type == "cuda"
                else None,
            )
            rows.append(row)
    for arch in ("fc", "bilstm"):
        off, on = (next(row for row in rows if row["arch"] == arch and row["amp"] is amp) for amp in (False, True))
        if "videos_per_s" in on:
            on["amp_vs_float32"] = round(on["videos_per_s"] / off["videos_per_s"], 2)
    return rows


def train_steps(model, optimizer, scaler, batch: dict, amp: bool, device: torch.device, steps: int):
    """`steps` training steps as the trainer takes them (BCE summed over classes, Adam, the AMP scaler)."""
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    for _ in range(steps):
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = model(inputs)
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), batch["labels"], reduction="none")
            .sum(dim=1)
            .mean()
        )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss


def training_batch(options: InputOptions, videos: int, device: torch.device) -> dict:
    if options.level == "frame":
        packed, options = packed_frames(videos, options.max_frames, seed=1)
    else:
        rng = np.random.default_rng(1)
        label_counts = rng.integers(1, 6, videos)
        packed = {
            "rgb": rng.normal(size=(videos, schema.RGB_DIM)).astype(np.float32),
            "audio": rng.normal(size=(videos, schema.AUDIO_DIM)).astype(np.float32),
            "label_ids": rng.integers(0, schema.NUM_CLASSES, int(label_counts.sum())),
            "label_counts": label_counts,
        }
    return unpack_on(packed, options, device)


def timed(function, device: torch.device, repeats: int) -> dict:
    """Median, min and max wall ms of `function` over `repeats` runs after one warm-up, the device synchronised."""
    function()
    synchronize(device)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        synchronize(device)
        times.append((time.perf_counter() - began) * 1000)
    median = statistics.median(times)
    return {
        "ms": round(median, 3),
        "min_ms": round(min(times), 3),
        "max_ms": round(max(times), 3),
        "spread": round((max(times) - min(times)) / median, 3),
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class NvmlSampler:
    """NVML's busy % and memory every 100 ms, per section (`mark` starts the next one); {} without a GPU."""

    def __init__(self, interval_s: float = 0.1):
        self.gpus, self.interval_s = Gpus(), interval_s
        self.samples: dict[str, list] = {}
        self.section = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if self.gpus.handles:
            self._thread.start()

    def mark(self, section: str) -> None:
        self.section = section

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.setdefault(self.section, []).extend(self.gpus.sample()[:1])

    def stop(self) -> dict:
        self._stop.set()
        if not self.gpus.handles:
            return {"available": False}
        self._thread.join()
        return {
            "available": True,
            **{
                section: {
                    "busy_percent_mean": round(statistics.mean(u for u, _ in values), 1),
                    "memory_mb_max": round(max(m for _, m in values) / 2**20, 1),
                }
                for section, values in self.samples.items()
                if values
            },
        }


if __name__ == "__main__":
    main()
