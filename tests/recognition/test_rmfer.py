"""RMFER: test-time path, L_pre and L_ACL wired to the tested loss formulas."""

import pytest
import torch
import torch.nn.functional as F

from recognition import create_model
from recognition.losses import RELEASED_CODE_SELF_MASK, acl_pair_masks, inter_sample_attention, multi_positive_nt_xent


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("rmfer-efficientnet-b2", num_classes=7, tau=0.5, lambda1=0.3).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(4, 3, 260, 260, generator=torch.Generator().manual_seed(1))


def test_test_time_is_f_fer_of_f_feat(model, images):
    with torch.no_grad():
        torch.testing.assert_close(model(images), model.head(model.backbone(images)))
    assert model.input_size == 260 and model.labels[0] == "neutral" and len(model.labels) == 7


def test_pretraining_loss_is_fer_plus_lambda1_ial(model, images):
    labels = torch.tensor([0, 1, 0, 2])
    with torch.no_grad():
        features = model.backbone(images)
        attended = inter_sample_attention(features, model.projection(features), tau=0.5)
        expected = F.cross_entropy(model.head(features), labels) + 0.3 * F.cross_entropy(
            model.ial_classifier(attended), labels)
        torch.testing.assert_close(model.pretraining_loss(images, labels), expected)


def test_released_code_self_mask_is_an_option():
    model = create_model("rmfer-efficientnet-b2", self_mask=RELEASED_CODE_SELF_MASK)
    assert model.self_mask == RELEASED_CODE_SELF_MASK


def test_acl_loss_uses_the_selected_pairs(model, images):
    video = torch.zeros(4, dtype=torch.long)
    person, frame = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 2, 40, 60])
    with torch.no_grad():
        embedded = F.normalize(model.projection(model.backbone(images)), dim=-1)
        similarity = embedded @ embedded.T
        positive, negative = acl_pair_masks(video, person, frame, similarity, gamma=0.1)
        expected = multi_positive_nt_xent(similarity, positive, negative, tau=0.2)
        assert positive.any() and negative.any()
        torch.testing.assert_close(model.acl_loss(images, video, person, frame, tau=0.2, gamma=0.1), expected)
