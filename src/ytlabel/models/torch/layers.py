"""Building blocks shared by the PyTorch architectures, initialised like their Keras mirrors.

Initialisation follows Keras's defaults, since Keras cannot easily follow PyTorch's:
  * Linear: Glorot-uniform weights, zero bias (PyTorch's default is Kaiming-uniform(a=sqrt 5)
    weights and a uniform bias);
  * LSTM: Glorot-uniform input kernel over the (in, 4H) matrix, orthogonal recurrent kernel, zero
    bias except 1.0 on the forget gate ("unit forget bias"); PyTorch's default is uniform(+-1/sqrt H)
    for all. Gate order is (input, forget, cell, output) in both frameworks.
PyTorch's LSTM adds two bias vectors (b_ih + b_hh) that only ever appear summed; Keras has one. We
keep b_hh at zero and frozen, so trainable parameters match Keras exactly and the transferred bias
is b_ih + b_hh.
"""

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ytlabel.features.encoder import load_encoder
from ytlabel.models.spec import EncoderRef
from ytlabel.models.weight_fit import check_fit


def dense(inputs: int, outputs: int, bias: float = 0.0) -> nn.Linear:
    """Glorot-uniform weights; a constant bias (0, or `spec.output_bias` for output layers)."""
    layer = nn.Linear(inputs, outputs)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.constant_(layer.bias, bias)
    return layer


def batch_norm(features: int) -> nn.BatchNorm1d:
    """Epsilon 1e-3 (Keras's default); moving averages keep 0.9 of their value per step.

    PyTorch's `momentum` is the weight of the new batch, so Keras's momentum=0.9 is PyTorch's 0.1.
    Keras's default 0.99 averages over ~100 steps, which lags the weights of a model trained for a
    few hundred steps (measured on the real split: docs/benchmarks.md, third run).
    """
    return nn.BatchNorm1d(features, eps=1e-3, momentum=0.1)


def lstm(inputs: int, hidden: int, layers: int, bidirectional: bool) -> nn.LSTM:
    module = nn.LSTM(inputs, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    for name, parameter in module.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(parameter)  # (4H, in): fan_in=in, fan_out=4H as Keras's (in, 4H)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(parameter)
        elif name.startswith("bias_ih"):
            nn.init.zeros_(parameter)
            with torch.no_grad():
                parameter[hidden : 2 * hidden] = 1.0  # forget gate
        else:  # bias_hh: folded into bias_ih, see the module docstring
            nn.init.zeros_(parameter)
            parameter.requires_grad_(False)
    return module


def run_lstm(module: nn.LSTM, frames: torch.Tensor, num_frames: torch.Tensor, last_only: bool) -> torch.Tensor:
    """Runs an LSTM over the real frames only (padding never enters the recurrence).

    Args:
        frames: (batch, time, features).
        num_frames: (batch,) real lengths, >= 1.
        last_only: return the last layer's output at each video's last real frame (batch, H)
            instead of the whole sequence (batch, time, H * directions) with zeros past the end.
    """
    lengths = num_frames.clamp(min=1).cpu()
    packed = pack_padded_sequence(frames, lengths, batch_first=True, enforce_sorted=False)
    outputs, (final, _) = module(packed)
    if last_only:
        return final[-1]  # (batch, H): unidirectional stacks only
    padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=frames.shape[1])
    return padded


def frame_mask(num_frames: torch.Tensor, time: int) -> torch.Tensor:
    """(batch, time) float mask: 1 for real frames, 0 for padding."""
    return (torch.arange(time, device=num_frames.device)[None, :] < num_frames[:, None]).float()


def masked_mean(frames: torch.Tensor, num_frames: torch.Tensor) -> torch.Tensor:
    """Mean over the real frames: (batch, time, features) -> (batch, features)."""
    mask = frame_mask(num_frames, frames.shape[1]).unsqueeze(-1)
    return (frames * mask).sum(dim=1) / num_frames.clamp(min=1)[:, None].to(frames.dtype)


def average_probabilities(logits: list[torch.Tensor]) -> torch.Tensor:
    """Logit of the mean of sigmoid(logits), computed in log space so it never saturates.

    logit(p) = log p - log(1 - p), with log p = logsumexp(log sigmoid(z_k)) - log K and
    log(1 - p) = logsumexp(log sigmoid(-z_k)) - log K; the log K terms cancel.
    """
    stacked = torch.stack(logits)
    return torch.logsumexp(nn.functional.logsigmoid(stacked), 0) - torch.logsumexp(
        nn.functional.logsigmoid(-stacked), 0
    )


class InputEncoder(nn.Module):
    """The optional expansion layer: standardised relu(x W + b) per modality, per frame for sequences."""

    def __init__(self, ref: EncoderRef | None):
        super().__init__()
        self.enabled = ref is not None
        if not self.enabled:
            return
        encoder = load_encoder(ref.path)
        self.encoder_rgb = dense(*encoder.rgb_kernel.shape)
        self.encoder_audio = dense(*encoder.audio_kernel.shape)
        with torch.no_grad():
            for layer, kernel, bias in (
                (self.encoder_rgb, encoder.rgb_kernel, encoder.rgb_bias),
                (self.encoder_audio, encoder.audio_kernel, encoder.audio_bias),
            ):
                layer.weight.copy_(torch.from_numpy(kernel.T))
                layer.bias.copy_(torch.from_numpy(bias))
                layer.requires_grad_(ref.finetune)
        # Fixed code standardisation (buffers: saved with the model, never trained).
        for modality in ("rgb", "audio"):
            mean, std = encoder.standardisation(modality)
            self.register_buffer(f"{modality}_code_mean", torch.from_numpy(mean))
            self.register_buffer(f"{modality}_code_std", torch.from_numpy(std))

    def dims(self, rgb: int, audio: int) -> tuple[int, int]:
        """Feature sizes after this layer."""
        if not self.enabled:
            return rgb, audio
        return self.encoder_rgb.out_features, self.encoder_audio.out_features

    def forward(self, rgb: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.enabled:
            return rgb, audio
        rgb_code = (torch.relu(self.encoder_rgb(rgb)) - self.rgb_code_mean) / self.rgb_code_std
        audio_code = (torch.relu(self.encoder_audio(audio)) - self.audio_code_mean) / self.audio_code_std
        return rgb_code, audio_code


# --- weight transfer in the canonical (Keras) layout -------------------------------------------------
# Dense "name":      name.kernel (in, out), name.bias (out,)
# BatchNorm "name":  name.gamma, name.beta, name.moving_mean, name.moving_variance (features,)
# LSTM "name":       name_l{k}.{fw|bw}.kernel (in, 4H), .recurrent_kernel (H, 4H), .bias (4H,)
BATCH_NORM_PARTS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def export_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """All Linear and LSTM weights of `model` in the canonical layout, keyed by module name."""
    weights = {}
    for name, module in _layers(model):
        if isinstance(module, nn.Linear):
            weights[f"{name}.kernel"] = module.weight.detach().T.numpy().copy()
            weights[f"{name}.bias"] = module.bias.detach().numpy().copy()
        elif isinstance(module, nn.BatchNorm1d):
            for part, attribute in BATCH_NORM_PARTS.items():
                weights[f"{name}.{part}"] = getattr(module, attribute).detach().numpy().copy()
        else:
            for layer, direction, suffix in _lstm_parts(module):
                key = f"{name}_l{layer}.{direction}"
                weights[f"{key}.kernel"] = getattr(module, f"weight_ih_l{layer}{suffix}").detach().T.numpy().copy()
                weights[f"{key}.recurrent_kernel"] = (
                    getattr(module, f"weight_hh_l{layer}{suffix}").detach().T.numpy().copy()
                )
                bias = getattr(module, f"bias_ih_l{layer}{suffix}") + getattr(module, f"bias_hh_l{layer}{suffix}")
                weights[f"{key}.bias"] = bias.detach().numpy().copy()
    return weights


def import_weights(model: nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Loads canonical weights into `model`; every key must be used and every layer filled."""
    check_fit(export_weights(model), weights)
    with torch.no_grad():
        for name, module in _layers(model):
            if isinstance(module, nn.Linear):
                module.weight.copy_(torch.from_numpy(weights[f"{name}.kernel"].T))
                module.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
                continue
            if isinstance(module, nn.BatchNorm1d):
                for part, attribute in BATCH_NORM_PARTS.items():
                    getattr(module, attribute).copy_(torch.from_numpy(weights[f"{name}.{part}"]))
                continue
            for layer, direction, suffix in _lstm_parts(module):
                key = f"{name}_l{layer}.{direction}"
                getattr(module, f"weight_ih_l{layer}{suffix}").copy_(torch.from_numpy(weights[f"{key}.kernel"].T))
                getattr(module, f"weight_hh_l{layer}{suffix}").copy_(
                    torch.from_numpy(weights[f"{key}.recurrent_kernel"].T)
                )
                getattr(module, f"bias_ih_l{layer}{suffix}").copy_(torch.from_numpy(weights[f"{key}.bias"]))
                getattr(module, f"bias_hh_l{layer}{suffix}").zero_()


def trainable_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def _layers(model: nn.Module):
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.BatchNorm1d, nn.LSTM)):
            yield name.replace(".", "_"), module


def _lstm_parts(module: nn.LSTM):
    for layer in range(module.num_layers):
        yield layer, "fw", ""
        if module.bidirectional:
            yield layer, "bw", "_reverse"
