"""A trained NED manipulator as one safetensors file: the four networks' weights, and in its metadata the code
schema, the emotions (the order of the per-emotion heads), the network widths, whether the networks read codes
relative to the person's neutral code (absent from older files: they do not) and the training config.

    save_ned(nets, "model.safetensors", schema, emotions, config_dict)
    nets, schema, emotions = load_ned("model.safetensors", expected_schema=params.schema)   # refuses another schema
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output
from ned_outlier.manipulator.ned.networks import NedNetworkConfig, NedNetworks
from ned_outlier.reconstruction.params import ParamSchema

FORMAT = "ned-manipulator/1"
STANDARDISATION = ("code_mean", "code_scale")  # absent from checkpoints made before it: unstandardised


def save_ned(nets: NedNetworks, path: str | Path, schema: ParamSchema, emotions: tuple[str, ...],
             config: dict | None = None) -> Path:
    """Write the networks with their schema, emotions, widths and training `config` (JSON-able), atomically."""
    metadata = {
        "format": FORMAT,
        "schema": json.dumps(dataclasses.asdict(schema)),
        "emotions": json.dumps(list(emotions)),
        "network": json.dumps(dataclasses.asdict(nets.config)),
        "codes": json.dumps({"relative_to_neutral": nets.relative_to_neutral}),
        "config": json.dumps(config or {}, default=str),
    }
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in nets.state_dict().items()}
    with atomic_output(path) as temp:
        save_file(state, str(temp), metadata=metadata)
    return Path(path)


def load_ned(path: str | Path, expected_schema: ParamSchema | None = None
             ) -> tuple[NedNetworks, ParamSchema, tuple[str, ...]]:
    """The networks (eval mode), their schema and emotions; UserError when the file is missing, not a NED
    checkpoint, or made for codes of another schema than `expected_schema`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"NED checkpoint not found: {path} (train one with scripts/train_ned.py)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise UserError(f"{path}: not a safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path}: not a NED manipulator checkpoint (format {metadata.get('format')!r})")
    raw = json.loads(metadata["schema"])
    schema = ParamSchema(raw["backend"], tuple(raw["expression_names"]), tuple(raw["mouth_names"]),
                         int(raw["n_vertices"]))
    if expected_schema is not None:
        expected_schema.require_same(schema, f"the NED checkpoint {path}")
    emotions = tuple(json.loads(metadata["emotions"]))
    network = json.loads(metadata["network"])
    config = NedNetworkConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in network.items()})
    relative = bool(json.loads(metadata.get("codes", "{}")).get("relative_to_neutral", False))
    nets = NedNetworks(len(schema.mouth_names) + len(schema.expression_names), len(emotions), config, relative)
    missing, unexpected = nets.load_state_dict(load_file(str(path)), strict=False)
    if unexpected or set(missing) - set(STANDARDISATION):
        raise UserError(f"{path}: its weights do not fit its network widths (missing {', '.join(missing)}; "
                        f"unexpected {', '.join(unexpected)})")
    return nets.eval(), schema, emotions
