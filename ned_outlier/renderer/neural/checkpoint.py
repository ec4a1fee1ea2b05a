"""A trained neural renderer as one safetensors file: the generator's weights and, in its metadata, the model config
(conditioning size, generator widths), the code schema of the reconstruction it was trained on, the crop size of
that reconstruction's crop matrices and the training config. The schema's backend also names the mesh topology the
conditioning images were drawn from (MediaPipe's or FLAME's: conditioning.backend_topology), so a renderer loaded
with `expected_schema` refuses meshes of the other topology.

    save_renderer(generator, "renderer.safetensors", model_config, schema, source_crop_size, config_dict)
    renderer = load_renderer("renderer.safetensors", expected_schema=params.schema)   # refuses another schema
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ned_outlier.config import from_dict
from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output
from ned_outlier.reconstruction.params import ParamSchema
from ned_outlier.renderer.neural.conditioning import CONDITION_CHANNELS
from ned_outlier.renderer.neural.networks import RendererGenerator

FORMAT = "ned-neural-renderer/1"


def checkpoint_format(path: str | Path) -> str | None:
    """The `format` entry of a safetensors file's metadata (None when it has none); UserError when the file is
    missing, a folder (the message names the .safetensors files in it) or not safetensors."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.safetensors"))
        raise UserError(f"{path} is a folder, not a checkpoint file: give the .safetensors file itself (a training "
                        "run writes model.safetensors for NED, renderer.safetensors for the renderer)"
                        + (f"; this folder holds {', '.join(inside)}" if inside else ""))
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format")
    except (SafetensorError, OSError) as error:
        raise UserError(f"{path}: not a safetensors file ({error})") from None


def save_renderer(generator: RendererGenerator, path: str | Path, model_config, schema: ParamSchema,
                  source_crop_size: int, config: dict | None = None) -> Path:
    """Write the generator with what it needs to run again, atomically."""
    metadata = {
        "format": FORMAT,
        "model": json.dumps(dataclasses.asdict(model_config)),
        "schema": json.dumps(dataclasses.asdict(schema)),
        "source_crop_size": str(source_crop_size),
        "config": json.dumps(config or {}, default=str),
    }
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in generator.state_dict().items()}
    with atomic_output(path) as temp:
        save_file(state, str(temp), metadata=metadata)
    return Path(path)


@dataclass(frozen=True)
class LoadedRenderer:
    """generator (eval mode); model_config (RendererModelConfig); schema; source_crop_size; trained_on: the actor
    video it was trained on, as given to the trainer ("" when unknown)."""

    generator: RendererGenerator
    model_config: object
    schema: ParamSchema
    source_crop_size: int
    trained_on: str = ""


def load_renderer(path: str | Path, expected_schema: ParamSchema | None = None) -> LoadedRenderer:
    """The renderer of `path`; UserError when it is missing, not a neural renderer checkpoint, or trained on
    another reconstruction schema than `expected_schema`."""
    from ned_outlier.renderer.neural.objective import RendererModelConfig

    found = checkpoint_format(path)
    if found != FORMAT:
        raise UserError(f"{path}: not a neural renderer checkpoint (format {found!r}; train one with "
                        "scripts/train_renderer.py)")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    raw = json.loads(metadata["schema"])
    schema = ParamSchema(raw["backend"], tuple(raw["expression_names"]), tuple(raw["mouth_names"]),
                         int(raw["n_vertices"]))
    if expected_schema is not None:
        expected_schema.require_same(schema, f"the neural renderer {path}")
    model_config = from_dict(RendererModelConfig, json.loads(metadata["model"]), f"{path} model")
    generator = RendererGenerator(CONDITION_CHANNELS, model_config.generator)
    generator.load_state_dict(load_file(str(path)))
    trained_on = str(json.loads(metadata.get("config", "{}")).get("data.video", ""))
    return LoadedRenderer(generator.eval(), model_config, schema, int(metadata["source_crop_size"]), trained_on)
