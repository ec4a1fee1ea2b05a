"""Putting a generated face back: the blend mask stays inside the mesh's hull, runs of face frames start afresh."""

import numpy as np
import torch

from ned_outlier.compose.blend import hull_mask
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.renderer.neural.checkpoint import LoadedRenderer
from ned_outlier.renderer.neural.conditioning import CONDITION_CHANNELS, ConditioningConfig
from ned_outlier.renderer.neural.inference import NeuralFaceRenderer, inner_mask
from ned_outlier.renderer.neural.networks import GeneratorConfig, RendererGenerator
from ned_outlier.renderer.neural.objective import RendererModelConfig


def test_inner_mask_fades_inside_the_hull_only():
    square = np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [10.0, 50.0]])
    mask = inner_mask(square, (60, 60), feather=2.0)
    hull = hull_mask(square, (60, 60), 0.0)
    assert (mask[hull == 0] == 0).all()  # nothing outside the hull
    assert mask[30, 30] == 1.0 and 0 < mask[30, 12] < 1  # solid in the middle, soft near the edge
    assert mask[30, 10] < mask[30, 12] < mask[30, 16]


def test_each_run_of_face_frames_starts_from_an_empty_history():
    torch.manual_seed(0)
    model = RendererModelConfig(ConditioningConfig(size=32), GeneratorConfig(ngf=4, n_downsample=2, n_blocks=1))
    generator = RendererGenerator(CONDITION_CHANNELS, model.generator)
    renderer = NeuralFaceRenderer(LoadedRenderer(generator, model, mediapipe_au_model()[1], 256))
    vertices = np.random.default_rng(0).uniform(4, 28, size=(478, 3))
    first, mask = renderer.generate(vertices)
    second, _ = renderer.generate(vertices)
    assert mask.any() and not torch.equal(first, second)  # the second frame sees the first one
    renderer.reset()
    again, _ = renderer.generate(vertices)
    assert torch.equal(first, again)
    assert (first[:, ~mask] == -1).all()  # black outside the face, as NED's generator
