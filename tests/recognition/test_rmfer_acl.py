"""RMFER's L_ACL through the model and the trainer's objective: the group layout reaches the loss, only the anchors
are contrasted, and a batch that does not follow its layout is refused."""

import math

import pytest
import torch
from torch import nn

from recognition.losses import ACL_RELEASED_CODE, ACLGroups, attention_contrastive_loss
from recognition.models.rmfer import RMFER
from recognition.training.config import ACLSection
from recognition.training.trainer import TrainingObjective


class FlatFeatures(nn.Identity):
    """A stand-in f_Feat: the 'images' are already the (M, 2) features."""

    num_features = 2
    pretrained_cfg = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def flat_rmfer() -> RMFER:
    """RMFER whose f_Feat and projection head H are identities: the crops' embeddings are the inputs."""
    model = RMFER(FlatFeatures(), ("neutral", "happy"), projection_dim=2, tau=1.0, lambda1=1.0, self_mask=1e-6)
    model.projection = nn.Identity()
    return model


# one group: anchor person 0 at frame 0, its positive person 1 at frame 2, its negative person 0 at frame 40
VIDEO, PERSON, FRAME = torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 0]), torch.tensor([0, 2, 40])
ONE_GROUP = ACLGroups.consecutive(groups=1, positives=1, negatives=1)


def test_acl_loss_by_hand_counts_the_anchor_alone():
    # embeddings (1, 0), (1, 1)/sqrt 2, (0, 1): s_ap = 1/sqrt 2, s_an = 0; at tau 0.5 the anchor's loss is
    # -log(e^sqrt2 / (e^sqrt2 + 1)) = log(1 + e^-sqrt2). Had the positive been an anchor too (its own loss 0), the
    # mean would be half of that.
    crops = torch.tensor([[1.0, 0.0], [3.0, 3.0], [0.0, 2.0]])  # H's output is normalised: lengths do not matter
    loss = flat_rmfer().acl_loss(crops, VIDEO, PERSON, FRAME, ONE_GROUP, tau=0.5, gamma=0.1)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-math.sqrt(2))), rel=1e-5)


def test_a_layout_that_does_not_match_the_crops_is_refused():
    crops = torch.tensor([[1.0, 0.0], [3.0, 3.0], [0.0, 2.0]])
    swapped = ACLGroups(ONE_GROUP.anchor, ONE_GROUP.negative, ONE_GROUP.positive)
    with pytest.raises(ValueError, match="does not follow its group layout"):
        flat_rmfer().acl_loss(crops, VIDEO, PERSON, FRAME, swapped, tau=0.5, gamma=0.1)
    with pytest.raises(ValueError, match="does not follow its group layout"):  # a window that excludes the positive
        flat_rmfer().acl_loss(crops, VIDEO, PERSON, FRAME, ONE_GROUP, tau=0.5, gamma=0.1, positive_window=1)


def test_the_variant_reaches_the_loss():
    # two positives kept (gamma 1): the paper's per-positive mean and the released code's log of the sum differ
    crops = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    video, person, frame = torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 40])
    groups = ACLGroups.consecutive(groups=1, positives=2, negatives=1)
    model = flat_rmfer()
    paper = model.acl_loss(crops, video, person, frame, groups, tau=0.5, gamma=1.0)
    released = model.acl_loss(crops, video, person, frame, groups, tau=0.5, gamma=1.0, variant=ACL_RELEASED_CODE)
    assert released.item() == pytest.approx(
        attention_contrastive_loss(crops, groups, tau=0.5, gamma=1.0, variant=ACL_RELEASED_CODE).item())
    assert released.item() < paper.item() - 0.1


class RecordingModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = []

    def training_loss(self, images, targets):
        return torch.tensor(0.0)

    def acl_loss(self, images, video, person, frame, **options):
        self.calls.append(options)
        return torch.tensor(1.0)


def test_the_training_objective_hands_the_samplers_layout_and_settings_to_the_loss():
    model = RecordingModel()
    layout = ACLGroups.consecutive(groups=2, positives=50, negatives=50)
    acl = ACLSection(weight=0.5, tau=0.2, gamma=0.1, variant=ACL_RELEASED_CODE)
    objective = TrainingObjective(model, acl, layout)
    tracks = [torch.zeros(202, 3, 4, 4)] + [torch.zeros(202, dtype=torch.long)] * 3
    assert objective(torch.zeros(1), torch.zeros(1), tracks).item() == 0.5
    assert model.calls == [dict(groups=layout, tau=0.2, gamma=0.1, positive_window=5, negative_gap=30,
                                variant=ACL_RELEASED_CODE)]
    assert objective(torch.zeros(1), torch.zeros(1)).item() == 0.0 and len(model.calls) == 1  # no ACL batch


def test_acl_settings_are_checked():
    for bad in (dict(gamma=0.0), dict(gamma=1.5), dict(tau=0.0), dict(variant="mean")):
        with pytest.raises(ValueError):
            ACLSection(**bad)
