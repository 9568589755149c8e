"""Starter baseline: per-class mixture of logistic experts with a softmax gate over M experts + 1 null.

p(class) = sum_m gate_m * sigmoid(expert_m), where the gate's softmax also covers a null expert that
always says "no". We return logit(p) computed in log space: log p and log(1 - p) are both
log-sum-exps, since 1 - p = gate_null + sum_m gate_m * sigmoid(-expert_m).
"""

import torch
from torch import nn
from torch.nn import functional

from ytlabel.data import schema
from ytlabel.kinds import VIDEO
from ytlabel.models.spec import MoeSpec, output_bias
from ytlabel.models.torch.layers import InputEncoder, dense


class Moe(nn.Module):
    level = VIDEO

    def __init__(self, spec: MoeSpec):
        super().__init__()
        self.spec = spec
        self.inputs = InputEncoder(spec.encoder)
        rgb, audio = self.inputs.dims(schema.RGB_DIM, schema.AUDIO_DIM)
        self.gates = dense(rgb + audio, spec.num_classes * (spec.mixtures + 1))
        self.experts = dense(rgb + audio, spec.num_classes * spec.mixtures, output_bias(spec.num_classes))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
        rgb, audio = self.inputs(batch["rgb"], batch["audio"])
        features = torch.cat([rgb, audio], dim=-1)
        classes, mixtures = self.spec.num_classes, self.spec.mixtures
        log_gates = functional.log_softmax(self.gates(features).view(-1, classes, mixtures + 1), dim=-1)
        experts = self.experts(features).view(-1, classes, mixtures)
        expert_gates, null_gate = log_gates[..., :mixtures], log_gates[..., mixtures:]
        log_yes = torch.logsumexp(expert_gates + functional.logsigmoid(experts), dim=-1)
        log_no = torch.logsumexp(torch.cat([null_gate, expert_gates + functional.logsigmoid(-experts)], -1), dim=-1)
        return log_yes - log_no
