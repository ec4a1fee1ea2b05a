"""Each recognition loss against its formula on a case small enough to work out by hand."""

import math

import pytest
import torch

from recognition.losses import (
    RELEASED_CODE_SELF_MASK,
    acl_pair_masks,
    inter_sample_attention,
    label_aware_clip_loss,
    multi_positive_nt_xent,
    symmetric_info_nce,
)

E = math.e


def test_label_aware_clip_loss_spreads_the_target_over_same_class_columns():
    # images = sentences = e1, e1, e2 with labels 0, 0, 1 and scale 1 -> logits [[1,1,0],[1,1,0],[0,0,1]]
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # rows 0, 1: target (1/2, 1/2, 0) -> -log(e / (2e + 1)); row 2: target (0, 0, 1) -> -log(e / (e + 2))
    one_direction = (2 * (math.log(2 * E + 1) - 1) + (math.log(E + 2) - 1)) / 3
    loss = label_aware_clip_loss(embeddings, embeddings, labels, logit_scale=1.0)
    assert loss.item() == pytest.approx(one_direction, rel=1e-6)  # symmetric logits: both directions agree


def test_label_aware_clip_loss_is_not_the_identity_target():
    # two encodings of the class-0 sentence that differ (text-encoder dropout in training): the identity target
    # would push image 0 away from the second one; the label-aware target does not
    image = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    logits = 2.0 * image @ text.T
    identity = torch.arange(3)
    identity_loss = 0.5 * (
        torch.nn.functional.cross_entropy(logits, identity) + torch.nn.functional.cross_entropy(logits.T, identity)
    )
    assert label_aware_clip_loss(image, text, labels, 2.0).item() != pytest.approx(identity_loss.item(), rel=1e-3)


def test_symmetric_info_nce_by_hand():
    projected = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # normalised to e1, e2
    targets = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # normalised to e1, (1, 1)/sqrt 2
    r = 2 * math.sqrt(0.5)  # scale 2 times cos 45 degrees
    # logits = [[2, r], [0, r]]
    image_to_text = (-math.log(E**2 / (E**2 + E**r)) - math.log(E**r / (1 + E**r))) / 2
    text_to_image = (-math.log(E**2 / (E**2 + 1)) - math.log(0.5)) / 2
    loss = symmetric_info_nce(projected, targets, logit_scale=2.0)
    assert loss.item() == pytest.approx((image_to_text + text_to_image) / 2, rel=1e-6)


FEATURES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
PROJECTED = torch.tensor([[1.0, 0.0], [0.0, 2.0], [5.0, 0.0]])  # cosines [[1,0,1],[0,1,0],[1,0,1]]


def test_inter_sample_attention_paper_self_mask():
    v = inter_sample_attention(FEATURES, PROJECTED, tau=1.0)
    # the diagonal becomes 1e-6 (~0): row 0 scores (0, 0, 1), row 1 (0, 0, 0), row 2 (1, 0, 0)
    expected = torch.tensor(
        [
            [(1 + E) / (2 + E), (1 + E) / (2 + E)],
            [2 / 3, 2 / 3],
            [(E + 1) / (E + 2), 2 / (E + 2)],
        ]
    )
    torch.testing.assert_close(v, expected, atol=1e-5, rtol=0)


def test_inter_sample_attention_released_code_self_mask_ignores_self():
    v = inter_sample_attention(FEATURES, PROJECTED, tau=1.0, self_mask=RELEASED_CODE_SELF_MASK)
    # row 0 attends only to samples 1 and 2 with weights 1 : e
    torch.testing.assert_close(v[0], torch.tensor([E / (1 + E), (1 + E) / (1 + E)]), atol=1e-6, rtol=0)


def test_acl_pairs_keep_most_similar_positives_and_least_similar_negatives():
    # crop 0: person 0 at frame 0; crops 1-4: persons 1-4 at frames 0-3 (positive candidates of crop 0);
    # crops 5-7: person 0 at frames 40, 50, 60 (negative candidates); crop 8: another video, never paired.
    video = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1])
    person = torch.tensor([0, 1, 2, 3, 4, 0, 0, 0, 0])
    frame = torch.tensor([0, 0, 1, 2, 3, 40, 50, 60, 0])
    similarity = torch.zeros(9, 9)
    similarity[0] = torch.tensor([1.0, 0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.4, 0.99])
    positive, negative = acl_pair_masks(video, person, frame, similarity, gamma=0.5)
    assert positive[0].nonzero().flatten().tolist() == [2, 3]  # ceil(0.5 * 4) = 2 most similar
    assert negative[0].nonzero().flatten().tolist() == [6, 7]  # ceil(0.5 * 3) = 2 least similar
    assert not positive[:, 8].any() and not negative[:, 8].any()
    assert not (positive & negative).any()


def test_acl_window_bounds_are_inclusive_for_positives_and_exclusive_for_negatives():
    video = torch.zeros(4, dtype=torch.long)
    person = torch.tensor([0, 1, 1, 0])
    frame = torch.tensor([0, 5, 6, 30])
    positive, negative = acl_pair_masks(video, person, frame, torch.zeros(4, 4), gamma=1.0)
    assert positive[0].tolist() == [False, True, False, False]  # frame gap 5 is in, 6 is out
    assert not negative[0, 3]  # a gap of exactly 30 is not beyond +-30


def test_multi_positive_nt_xent_by_hand():
    similarity = torch.tensor([[1.0, 0.5, 0.1], [0.5, 1.0, 0.3], [0.1, 0.3, 1.0]])
    positive = torch.tensor([[False, True, False], [True, False, True], [False, False, False]])
    negative = torch.tensor([[False, False, True], [False, False, False], [True, True, False]])
    tau = 0.5
    anchor0 = -math.log(E**1.0 / (E**1.0 + E**0.2))
    anchor1 = -0.5 * (math.log(E**1.0 / (E**1.0 + E**0.6)) + math.log(E**0.6 / (E**1.0 + E**0.6)))
    loss = multi_positive_nt_xent(similarity, positive, negative, tau)  # anchor 2 has no positive: skipped
    assert loss.item() == pytest.approx((anchor0 + anchor1) / 2, rel=1e-6)


def test_multi_positive_nt_xent_without_positives_is_zero_and_differentiable():
    similarity = torch.rand(3, 3, requires_grad=True)
    none = torch.zeros(3, 3, dtype=torch.bool)
    loss = multi_positive_nt_xent(similarity, none, ~none, tau=0.1)
    loss.backward()
    assert loss.item() == 0.0 and similarity.grad is not None
