"""Each recognition loss against its formula on a case small enough to work out by hand."""

import math

import pytest
import torch

from recognition.losses import (
    ACL_RELEASED_CODE,
    RELEASED_CODE_SELF_MASK,
    ACLGroups,
    acl_candidates,
    anchor_nt_xent,
    attention_contrastive_loss,
    check_acl_groups,
    inter_sample_attention,
    keep_extreme,
    label_aware_clip_loss,
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


def test_acl_candidates_are_other_people_nearby_and_the_same_person_far_away():
    # crop 0: person 0 at frame 0; crops 1-4: persons 1-4 at frames 0-3; crops 5-7: person 0 at frames 40, 50, 60;
    # crop 8: another video, never paired
    video = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1])
    person = torch.tensor([0, 1, 2, 3, 4, 0, 0, 0, 0])
    frame = torch.tensor([0, 0, 1, 2, 3, 40, 50, 60, 0])
    positive, negative = acl_candidates(video, person, frame)
    assert positive[0].nonzero().flatten().tolist() == [1, 2, 3, 4]
    assert negative[0].nonzero().flatten().tolist() == [5, 6, 7]
    assert not positive[:, 8].any() and not negative[:, 8].any() and not (positive & negative).any()


def test_acl_window_bounds_are_inclusive_for_positives_and_exclusive_for_negatives():
    video = torch.zeros(4, dtype=torch.long)
    person = torch.tensor([0, 1, 1, 0])
    frame = torch.tensor([0, 5, 6, 30])
    positive, negative = acl_candidates(video, person, frame, positive_window=5, negative_gap=30)
    assert positive[0].tolist() == [False, True, False, False]  # frame gap 5 is in, 6 is out
    assert not negative[0, 3]  # a gap of exactly 30 is not beyond +-30


def test_acl_groups_follow_the_samplers_consecutive_layout():
    groups = ACLGroups.consecutive(groups=2, positives=2, negatives=3)
    assert groups.anchor.tolist() == [0, 6]
    assert groups.positive.tolist() == [[1, 2], [7, 8]]
    assert groups.negative.tolist() == [[3, 4, 5], [9, 10, 11]]
    with pytest.raises(ValueError, match="ACLGroups.negative"):
        ACLGroups(torch.tensor([0]), torch.tensor([[1]]), torch.tensor([[2], [3]]))


def test_keep_extreme_keeps_ceil_gamma_of_each_row():
    similarity = torch.tensor([[0.8, 0.0, 0.6], [-0.6, 0.8, 0.0]])
    assert keep_extreme(similarity, 0.5, largest=True).tolist() == [[True, False, True], [False, True, True]]
    assert keep_extreme(similarity, 0.5, largest=False).tolist() == [[False, True, True], [True, False, True]]
    assert keep_extreme(similarity, 0.1, largest=True).sum().item() == 2  # at least one per row
    wide = torch.arange(30.0)[None]
    assert keep_extreme(wide, 0.1, largest=True).nonzero()[:, 1].tolist() == [27, 28, 29]  # 0.1 * 30 in floats
    assert keep_extreme(torch.arange(50.0)[None], 0.1, largest=False).sum().item() == 5  # the paper's 50 -> 5
    with pytest.raises(ValueError, match="gamma"):
        keep_extreme(similarity, 0.0, largest=True)


def unit(cosine: float, sign: float = 1.0) -> list[float]:
    """The 2-d unit vector (c, +-sqrt(1 - c^2)): cosine c to (1, 0)."""
    return [cosine, sign * math.sqrt(1.0 - cosine**2)]


def turned(vector: list[float]) -> list[float]:
    """Rotated by +90 degrees: its cosine to (1, 0) becomes its cosine to (0, 1)."""
    return [-vector[1], vector[0]]


# A batch as ACLBatchSampler lays it out: two groups of an anchor, 3 positives, 3 negatives (M = 14).
# Group 0: anchor (1, 0); positive cosines 0.8, 0.0, 0.6; negative cosines -0.6, 0.8, 0.0.
# Group 1: anchor (0, 1); positive cosines 1.0, 0.6, -0.8; negative cosines 0.0, -1.0, 0.8.
GROUP_COSINES = [([0.8, 0.0, 0.6], [-0.6, 0.8, 0.0]), ([1.0, 0.6, -0.8], [0.0, -1.0, 0.8])]
SAMPLER_BATCH = ACLGroups.consecutive(groups=2, positives=3, negatives=3)


def sampler_batch(mirrored: tuple[int, ...] = ()) -> torch.Tensor:
    """(14, 2) embeddings of the batch; the crops listed in `mirrored` are reflected across their anchor's axis,
    which keeps every anchor similarity and changes their similarities to the other crops of their group."""
    rows = [[1.0, 0.0]] + [unit(c) for c in GROUP_COSINES[0][0] + GROUP_COSINES[0][1]]
    rows += [[0.0, 1.0]] + [turned(unit(c)) for c in GROUP_COSINES[1][0] + GROUP_COSINES[1][1]]
    for i in mirrored:
        rows[i] = [rows[i][0], -rows[i][1]] if i < 7 else [-rows[i][0], rows[i][1]]
    return torch.tensor(rows)


def test_acl_loss_by_hand_on_a_sampler_shaped_batch():
    # tau 0.5, gamma 0.5: each anchor keeps ceil(1.5) = 2 of its 3 positives (the most similar) and of its negatives
    # (the least similar). Group 0 keeps positives 0.8, 0.6 and negatives -0.6, 0.0 (the 0.8 negative is dropped);
    # group 1 keeps positives 1.0, 0.6 and negatives -1.0, 0.0. Logits = cosine / 0.5.
    d0 = E**1.6 + E**1.2 + E**-1.2 + E**0.0
    d1 = E**2.0 + E**1.2 + E**-2.0 + E**0.0
    group0 = -0.5 * (math.log(E**1.6 / d0) + math.log(E**1.2 / d0))
    group1 = -0.5 * (math.log(E**2.0 / d1) + math.log(E**1.2 / d1))
    loss = attention_contrastive_loss(sampler_batch(), SAMPLER_BATCH, tau=0.5, gamma=0.5)
    assert loss.item() == pytest.approx((group0 + group1) / 2, rel=1e-6)


def test_acl_released_code_variant_by_hand():
    # the same kept pairs; one log of the summed positives per anchor
    d0 = E**1.6 + E**1.2 + E**-1.2 + E**0.0
    d1 = E**2.0 + E**1.2 + E**-2.0 + E**0.0
    group0 = -math.log((E**1.6 + E**1.2) / d0)
    group1 = -math.log((E**2.0 + E**1.2) / d1)
    loss = attention_contrastive_loss(sampler_batch(), SAMPLER_BATCH, tau=0.5, gamma=0.5, variant=ACL_RELEASED_CODE)
    assert loss.item() == pytest.approx((group0 + group1) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="variant"):
        anchor_nt_xent(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool),
                       torch.ones(1, 1, dtype=torch.bool), tau=0.5, variant="mean")


def test_only_the_designated_anchors_are_contrasted():
    # Were every crop an anchor, the positives' own rows would count: mirroring one positive and one negative per
    # group changes their similarities to the other crops (checked below) and would change the loss, and a crop
    # that no anchor keeps would get a gradient through its own row. With anchor semantics neither happens.
    embedded = sampler_batch().requires_grad_()
    mirrored = sampler_batch(mirrored=(1, 4, 8, 11))
    assert not torch.allclose(embedded[:7] @ embedded[:7].T, mirrored[:7] @ mirrored[:7].T)
    assert not torch.allclose(embedded[7:] @ embedded[7:].T, mirrored[7:] @ mirrored[7:].T)
    loss = attention_contrastive_loss(embedded, SAMPLER_BATCH, tau=0.5, gamma=0.5)
    assert attention_contrastive_loss(mirrored, SAMPLER_BATCH, tau=0.5, gamma=0.5).item() == pytest.approx(loss.item())
    loss.backward()
    dropped = [2, 5, 10, 13]  # group 0: positive cosine 0.0, negative 0.8; group 1: positive -0.8, negative 0.8
    assert embedded.grad[dropped].abs().max().item() == 0.0
    assert embedded.grad[[0, 1, 3, 4, 6, 7]].abs().sum(dim=1).min().item() > 0.0


def test_a_batch_that_does_not_follow_its_layout_is_refused():
    # video 0: anchor person 0 at frame 100, positives persons 1-3 at frames 100-102, negatives person 0 far away
    video = torch.tensor([0] * 7)
    person = torch.tensor([0, 1, 2, 3, 0, 0, 0])
    frame = torch.tensor([100, 100, 101, 102, 40, 150, 200])
    layout = ACLGroups.consecutive(groups=1, positives=3, negatives=3)
    check_acl_groups(layout, video, person, frame, positive_window=5, negative_gap=30)
    swapped = ACLGroups(layout.anchor, layout.negative, layout.positive)
    with pytest.raises(ValueError, match="does not follow its group layout"):
        check_acl_groups(swapped, video, person, frame, positive_window=5, negative_gap=30)
    with pytest.raises(ValueError, match="beyond the batch"):
        check_acl_groups(ACLGroups.consecutive(2, 3, 3), video, person, frame, positive_window=5, negative_gap=30)
