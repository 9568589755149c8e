"""The PyTorch training loop: setup -> train (DDP when WORLD_SIZE > 1) -> validate -> save -> cleanup.

The framework's half only: the model, the step, DDP, checkpoints' tensors. Resume, the schedule, the curves,
validation and the result record are `training/loop.py`'s, shared with the Keras path."""

import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ytlabel import runs, storage
from ytlabel.config import TrainConfig
from ytlabel.data import stream
from ytlabel.data.readahead import ReadAhead
from ytlabel.kinds import TORCH
from ytlabel.models import torch as torch_models
from ytlabel.models.torch.layers import trainable_parameters
from ytlabel.runs import RESULT, RunDir
from ytlabel.training import distill, inputs, record, torch_feed
from ytlabel.training.distributed import Place
from ytlabel.training.loop import CHECKPOINTS, Loop, optimizer_settings
from ytlabel.training.telemetry import Telemetry


def train(config: TrainConfig, run: RunDir, place: Place, data: inputs.RunData) -> dict:
    started = time.perf_counter()
    device = torch.device(f"cuda:{place.local_rank}" if torch.cuda.is_available() else "cpu")
    if place.distributed:
        # Rank and world size from our place, not env://'s RANK/WORLD_SIZE: under torchrun-style contracts
        # (Trainer v2's PET_* variables) only the node rank and count are given.
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", rank=place.rank, world_size=place.world_size
        )
    telemetry = Telemetry(place.rank, config.exporter_port(place), config.metrics_host)
    try:
        return _train(Loop(config, run, place, data, telemetry, started), device)
    finally:
        telemetry.close()
        if place.distributed:
            dist.destroy_process_group()


def _train(loop: Loop, device: torch.device) -> dict:
    config, run, place, data, steps = loop.config, loop.run, loop.place, loop.data, loop.steps
    # --- setup --------------------------------------------------------------------------------
    torch.manual_seed(config.seed)
    model = torch_models.build(config.arch, config.spec()).to(device)
    optimizer = _optimizer(config, [p for p in model.parameters() if p.requires_grad])
    amp = config.amp and device.type == "cuda"
    if config.amp and not amp:
        record.log.warning("amp=true needs a GPU; training in float32 on %s", device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loop.resume(lambda path: _load_checkpoint(path, model, optimizer, scaler, device))
    loop.start_curves()
    # Each rank keeps its own batch-norm statistics over its batches; they are averaged at every epoch
    # end (SyncBatchNorm would need GPUs). DDP's default would copy rank 0's over the others before
    # every forward, so the saved statistics would have seen rank 0's batches only.
    net = DistributedDataParallel(model, broadcast_buffers=False) if place.distributed else model
    # Workers live across epochs and send packed batches (uint8 frames, label ids), unpacked here (below).
    loader = torch_feed.data_loader(loop.plan, config.loader_workers, packed=True, start_epoch=loop.state["epoch"])
    teacher = distill.load_teacher(config, data.options)

    # --- train --------------------------------------------------------------------------------
    progress = record.progress_bar(place.writer)
    for epoch in range(loop.state["epoch"], config.epochs):
        loop.begin_epoch(epoch)
        net.train()
        # A thread reads and unpacks `read_ahead` batches ahead while the step runs (0: synchronously).
        # On a GPU the batches cross as uint8 codes and label ids and are expanded there (a teacher reads
        # the inputs on the CPU, so with one they are expanded here).
        source = torch_feed.batches(loader, data.options, device if teacher is None else None)
        iterator = ReadAhead(source, config.read_ahead) if config.read_ahead else source
        waited = time.perf_counter()
        for step in range(steps):
            try:
                batch = next(iterator)
            except StopIteration:
                raise stream.short_epoch(loop.plan, epoch, step) from None
            if step < loop.state["step"]:  # fast-forward to where the checkpoint left this epoch
                waited = time.perf_counter()
                continue
            if teacher is not None:
                batch["labels"] = torch.from_numpy(
                    teacher.soften(
                        {key: value.numpy() for key, value in batch.items() if key != "labels"}, batch["labels"].numpy()
                    )
                )
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            fetched = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = loop.learning_rate(epoch, step)
            labels = batch.pop("labels")
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                logits = net(batch)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
            loss = loss.sum(dim=1).mean()  # summed over classes, averaged over videos (as the starter)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            value = loss.item()
            done = time.perf_counter()
            loop.step_done(step, done - waited, fetched - waited, len(labels), value)
            progress.update(epoch, step + 1, steps, value)
            if config.checkpoint_every_steps and (step + 1) % config.checkpoint_every_steps == 0 and step + 1 < steps:
                _checkpoint(run, place, model, optimizer, scaler, loop.checkpoint_state(epoch, step + 1))
            # The step's bookkeeping (telemetry, curves, progress, checkpoints) is training time, not data wait.
            waited = time.perf_counter()
            loop.add_train_time(waited - done)
        if isinstance(iterator, ReadAhead):
            iterator.close()  # the loader may hold batches past `steps`; stop reading them
        del iterator
        if place.distributed:
            average_buffers(model, place.world_size)
        model.eval()
        loop.end_epoch(lambda b: _predict(model, b, device))
        _checkpoint(run, place, model, optimizer, scaler, loop.checkpoint_state(epoch + 1))
        if place.distributed:
            dist.barrier()

    # --- save ------------------------------------------------------------------------------------
    progress.close()
    result = loop.finish(named_weights(model), trainable_parameters(model), {"device": str(device), "amp": amp})
    if place.writer:
        with storage.AtomicTarget(run.path(runs.MODEL_FILES[TORCH])) as partial:
            torch.save(model.state_dict(), partial)
        run.write_json(RESULT, result)
        run.sync()
    return result


def _optimizer(config: TrainConfig, parameters: list) -> torch.optim.Optimizer:
    kind, settings = optimizer_settings(config)
    if kind == "adam":
        return torch.optim.Adam(parameters, lr=config.learning_rate, eps=settings["epsilon"])
    return torch.optim.SGD(parameters, lr=config.learning_rate, momentum=settings["momentum"])


def _predict(model, batch: dict, device) -> np.ndarray:
    with torch.no_grad():
        return model({key: torch.from_numpy(value).to(device) for key, value in batch.items()}).float().cpu().numpy()


def _checkpoint(run: RunDir, place: Place, model, optimizer, scaler, state: dict) -> None:
    """Tensors in last.pt (loadable with weights_only=True), then the counters and curves in state.json
    (strict JSON), the state last: a checkpoint without it is not resumed from."""
    if not place.writer:
        return
    # The CPU generator's state too (dropout masks): a resumed run draws what the uninterrupted one would have.
    tensors = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    with storage.AtomicTarget(run.path(CHECKPOINTS[TORCH].weights)) as partial:
        torch.save(tensors, partial)
    run.write_json(CHECKPOINTS[TORCH].state, state)
    run.sync()


def _load_checkpoint(path: str, model, optimizer, scaler, device) -> None:
    """Loads last.pt without executing anything it holds (weights_only=True: tensors and plain containers)."""
    saved = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scaler.load_state_dict(saved["scaler"])
    if "rng" in saved:  # checkpoints before it was saved resume with the generator as seeded
        torch.set_rng_state(saved["rng"].cpu())


def average_buffers(model, world_size: int) -> None:
    """Replaces every floating-point buffer (batch-norm running mean and variance) by its mean over ranks."""
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(world_size)


def named_weights(model) -> list[tuple[str, np.ndarray]]:
    """Every parameter and buffer by name (sorted): equal across ranks when DDP kept the parameters in sync
    and `average_buffers` the batch-norm statistics."""
    return [(name, value.detach().cpu().numpy()) for name, value in sorted(model.state_dict().items())]
