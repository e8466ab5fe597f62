"""Writing shards back out in the official LayerFlow folder layout, for inspection and scoring.

``OUT/KEY/{fg,mask,bg,bl}/NNNN.png`` per sample (fg over the official grey, see
:mod:`layerflow_model.layerflow_folder`), the sample's full json as ``OUT/KEY/sample.json``
(attributes included), and the prompts of every sample in ``OUT/meta_export.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from layerflow_model.layerflow_folder import write_layerflow_meta, write_layerflow_sequence
from layerflow_model.video_io import write_text_atomic

from .shards import iter_samples

META_NAME = "meta_export.json"


def export_shards(shards_dir: Path, out_dir: Path) -> list[str]:
    """Export every sample of the shards in ``shards_dir``; return the sample keys written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts = {}
    for sample in iter_samples(Path(shards_dir)):
        seq_dir = write_layerflow_sequence(out_dir / sample.key, sample.clip)
        write_text_atomic(seq_dir / "sample.json", json.dumps(sample.metadata(), indent=1, sort_keys=True))
        prompts[sample.key] = sample.prompts
    if prompts:
        write_layerflow_meta(out_dir, prompts, meta_name=META_NAME)
    return list(prompts)
