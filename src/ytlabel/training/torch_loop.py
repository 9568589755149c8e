"""The PyTorch training loop: setup -> train (DDP when WORLD_SIZE > 1) -> validate -> save -> cleanup."""

import hashlib
import math
import os
import pickle
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ytlabel import runs, storage
from ytlabel.config import TrainConfig
from ytlabel.data import stream
from ytlabel.data.readahead import ReadAhead
from ytlabel.errors import TrainingError
from ytlabel.models import torch as torch_models
from ytlabel.models.torch.layers import trainable_parameters
from ytlabel.runs import RESULT, RunDir
from ytlabel.training import distill, inputs, record, schedule, torch_feed
from ytlabel.training.distributed import Place
from ytlabel.training.telemetry import Telemetry
from ytlabel.training.validation import validate

CHECKPOINT = runs.TORCH_CHECKPOINT
CHECKPOINT_STATE = runs.TORCH_CHECKPOINT_STATE


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
        return _train(config, run, place, data, device, telemetry, started)
    finally:
        telemetry.close()
        if place.distributed:
            dist.destroy_process_group()


def _train(config, run, place, data, device, telemetry, started) -> dict:
    # --- setup --------------------------------------------------------------------------------
    plan = inputs.make_plan(config, data, place)
    steps = plan.steps_per_epoch
    torch.manual_seed(config.seed)
    model = torch_models.build(config.arch, config.spec()).to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = (
        torch.optim.Adam(parameters, lr=config.learning_rate, eps=1e-7)
        if config.optimizer == "adam"
        else torch.optim.SGD(parameters, lr=config.learning_rate, momentum=0.9)
    )
    amp = config.amp and device.type == "cuda"
    if config.amp and not amp:
        record.log.warning("amp=true needs a GPU; training in float32 on %s", device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    state = {"epoch": 0, "step": 0, "videos": 0, "train_seconds": 0.0, "history": []}
    if os.path.exists(run.path(CHECKPOINT)) and run.exists(CHECKPOINT_STATE):
        state = _resume(run, model, optimizer, scaler, device)
        record.log.info("resuming from epoch %d step %d", state["epoch"], state["step"])
    # Each rank keeps its own batch-norm statistics over its batches; they are averaged at every epoch
    # end (SyncBatchNorm would need GPUs). DDP's default would copy rank 0's over the others before
    # every forward, so the saved statistics would have seen rank 0's batches only.
    net = DistributedDataParallel(model, broadcast_buffers=False) if place.distributed else model
    # Workers live across epochs and send packed batches (uint8 frames, label ids), unpacked here (below).
    loader = torch_feed.data_loader(plan, config.loader_workers, packed=True, start_epoch=state["epoch"])
    teacher = distill.load_teacher(config, data.options)
    history = record.History(run, place.writer, state["history"])

    # --- train --------------------------------------------------------------------------------
    first_step = None
    progress = record.progress_bar(place.writer)
    for epoch in range(state["epoch"], config.epochs):
        telemetry.set_epoch(epoch)
        net.train()
        losses, epoch_videos, epoch_started = [], 0, time.perf_counter()
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
                raise stream.short_epoch(plan, epoch, step) from None
            if step < state["step"]:  # fast-forward to where the checkpoint left this epoch
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
            global_step = epoch * steps + step
            rate = schedule.learning_rate(
                config.schedule, config.learning_rate, global_step, steps, config.epochs, config.decay_rate
            )
            for group in optimizer.param_groups:
                group["lr"] = rate
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
            if not math.isfinite(value):
                raise TrainingError(
                    f"the training loss became {value} at epoch {epoch}, step {step}: lower "
                    f"learning_rate (now {config.learning_rate}) or check the data; "
                    f"the last checkpoint in {config.out} is from before it"
                )
            done = time.perf_counter()
            telemetry.step(done - waited, fetched - waited, len(labels), value)
            state["train_seconds"] += done - waited
            first_step = first_step if first_step is not None else done - waited
            losses.append(value)
            epoch_videos += len(labels)
            history.step(global_step, value, rate)
            progress.update(epoch, step + 1, steps, value)
            if config.checkpoint_every_steps and (step + 1) % config.checkpoint_every_steps == 0 and step + 1 < steps:
                _checkpoint(
                    run,
                    place,
                    model,
                    optimizer,
                    scaler,
                    {
                        **state,
                        "epoch": epoch,
                        "step": step + 1,
                        "history": history.rows,
                        "videos": state["videos"] + epoch_videos * place.world_size,
                    },
                )
            # The step's bookkeeping (telemetry, curves, progress, checkpoints) is training time, not data wait.
            waited = time.perf_counter()
            state["train_seconds"] += waited - done
        if isinstance(iterator, ReadAhead):
            iterator.close()  # the loader may hold batches past `steps`; stop reading them
        del iterator
        state["videos"] += epoch_videos * place.world_size
        state["step"] = 0
        if place.distributed:
            average_buffers(model, place.world_size)

        # --- validate ---------------------------------------------------------------------------
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else None,
            "learning_rate": rate,
            "epoch_s": round(time.perf_counter() - epoch_started, 3),
            "videos_per_s": round(epoch_videos * place.world_size / (time.perf_counter() - epoch_started), 2),
        }
        if place.writer and data.validation_shards:
            model.eval()
            metrics = validate(
                lambda b: _predict(model, b, device), data.validation_shards, data.options, config.batch_size
            )
            row.update(val_loss=metrics["loss"], val_gap_at_20=metrics["gap_at_20"], val_hit_at_1=metrics["hit_at_1"])
        history.add(row, (epoch + 1) * steps)
        _checkpoint(run, place, model, optimizer, scaler, {**state, "epoch": epoch + 1, "history": history.rows})
        if place.distributed:
            dist.barrier()

    # --- save ------------------------------------------------------------------------------------
    progress.close()
    record.log.info("rank %d final weights sha256 %s", place.rank, weights_digest(model))
    history.close()
    result = record.result_record(
        config,
        data,
        place,
        history,
        telemetry.summary(),
        state["videos"],
        state["train_seconds"],
        started,
        trainable_parameters(model),
        first_step,
        config.batch_size * place.world_size,
        {"device": str(device), "amp": amp, "steps_per_epoch": steps},
    )
    if place.writer:
        with storage.AtomicTarget(run.path(runs.MODEL_FILES["torch"])) as partial:
            torch.save(model.state_dict(), partial)
        run.write_json(RESULT, result)
        run.sync()
    return result


def _predict(model, batch: dict, device) -> np.ndarray:
    with torch.no_grad():
        return model({key: torch.from_numpy(value).to(device) for key, value in batch.items()}).float().cpu().numpy()


def _checkpoint(run: RunDir, place: Place, model, optimizer, scaler, state: dict) -> None:
    """Tensors in last.pt (loadable with weights_only=True), counters and history in state.json (strict JSON),
    the state last: a checkpoint without it is not resumed from."""
    if not place.writer:
        return
    path = run.path(CHECKPOINT)
    # The CPU generator's state too (dropout masks): a resumed run draws what the uninterrupted one would have.
    state_dicts = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    with storage.AtomicTarget(path) as partial:
        torch.save(state_dicts, partial)
    run.write_json(CHECKPOINT_STATE, state)
    run.sync()


def _resume(run: RunDir, model, optimizer, scaler, device) -> dict:
    """Loads a checkpoint without executing anything it holds (weights_only=True: tensors and plain
    containers only); a file that is not one is a one-line error naming it."""
    path = run.path(CHECKPOINT)
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        if "rng" in saved:  # checkpoints before it was saved resume with the generator as seeded
            torch.set_rng_state(saved["rng"].cpu())
        state = run.read_json(CHECKPOINT_STATE)
    except (pickle.UnpicklingError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise runs.RunError(
            f"{run.uri}/{CHECKPOINT}: not a checkpoint this run can resume from ({reason[:200]}); "
            f"remove checkpoints/ to train from scratch"
        ) from None
    return state


def average_buffers(model, world_size: int) -> None:
    """Replaces every floating-point buffer (batch-norm running mean and variance) by its mean over ranks."""
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(world_size)


def weights_digest(model) -> str:
    """sha256 over every parameter's and buffer's bytes: equal across ranks when DDP kept the parameters
    in sync and `average_buffers` the batch-norm statistics."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
