"""The PyTorch path and the data layer must not need TensorFlow (the torch images do not install it)."""

import subprocess
import sys

CHECK = """
import sys
import ytlabel.cli, ytlabel.data.inspect, ytlabel.data.synth, ytlabel.data.sources, ytlabel.training.torch_feed, ytlabel.training.torch_loop
from ytlabel.data import reader
records = list(reader.read_shard(sys.argv[1]))
print(len(records), sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))
"""


def test_torch_path_imports_no_tensorflow(sample_shards):
    out = subprocess.run([sys.executable, "-c", CHECK, sample_shards[0]], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "284 []"
