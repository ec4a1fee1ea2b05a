"""DECA's coarse encoder and EMOCA's expression encoder, loaded from the user's own released checkpoints (never
downloaded), and DECA's 224 x 224 face crop."""

from __future__ import annotations

from ned_outlier.reconstruction.deca.checkpoint import (
    DECA_MODEL_CONFIG_KEY,
    DECA_MODEL_ENV,
    DECA_MODEL_FLAG,
    EMOCA_MODEL_ENV,
    EMOCA_MODEL_FLAG,
    load_deca_encoder,
    load_emoca,
)
from ned_outlier.reconstruction.deca.crop import deca_crop_square, deca_crop_transform, deca_input
from ned_outlier.reconstruction.deca.encoder import (
    DECA_CODE_LAYOUT,
    DecaCodes,
    DecaEncoder,
    EmocaEncoder,
    EmocaExpressionEncoder,
    ResNet50Trunk,
    split_deca_code,
)

__all__ = [
    "DECA_CODE_LAYOUT", "DECA_MODEL_CONFIG_KEY", "DECA_MODEL_ENV", "DECA_MODEL_FLAG", "EMOCA_MODEL_ENV",
    "EMOCA_MODEL_FLAG", "DecaCodes", "DecaEncoder", "EmocaEncoder", "EmocaExpressionEncoder", "ResNet50Trunk",
    "deca_crop_square", "deca_crop_transform", "deca_input", "load_deca_encoder", "load_emoca", "split_deca_code",
]
