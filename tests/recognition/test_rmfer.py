"""RMFER: f_FER(f_Feat) at test time, L_pre and L_ACL on stand-in modules small enough to work out by hand (for both
self masks), and the real EfficientNet-B2 model's test-time path."""

import math

import pytest
import torch
from torch import nn

from recognition import create_model
from recognition.losses import PAPER_SELF_MASK, RELEASED_CODE_SELF_MASK
from recognition.models.rmfer import RMFER

E2 = math.e**2  # exp(1 / tau) with tau = 0.5


def softplus(x: float) -> float:
    """Two-class cross-entropy of logits whose (other - true) difference is x: log(1 + e^x)."""
    return math.log1p(math.exp(x))


class FlatFeatures(nn.Identity):
    """A stand-in f_Feat: the 'images' are already the (N, 2) features."""

    num_features = 2
    pretrained_cfg = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def hand_rmfer(self_mask=PAPER_SELF_MASK, tau=0.5, lambda1=0.3) -> RMFER:
    """RMFER over 2-d features with H = identity, f_FER = zero logits, f_IAL = identity (logits = v)."""
    model = RMFER(FlatFeatures(), ("neutral", "happy"), projection_dim=2, tau=tau, lambda1=lambda1,
                  self_mask=self_mask)
    model.projection = nn.Identity()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.ial_classifier.weight.copy_(torch.eye(2))
        model.ial_classifier.bias.zero_()
    return model


# features f0 = f2 = (1, 0), f1 = (0, 1): cosines s01 = s12 = 0, s02 = 1; labels 0, 1, 0
FEATURES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
LABELS = torch.tensor([0, 1, 0])


def test_pretraining_loss_by_hand_with_the_papers_self_mask():
    # diagonal ~0, scores / tau: row 0 (0, 0, 2) -> a = (1, 1, e^2) / (2 + e^2), v0 = (1 + e^2, 1) / (2 + e^2);
    # row 1 (0, 0, 0) -> v1 = (2/3, 1/3); row 2 (2, 0, 0) -> v2 = (e^2 + 1, 1) / (e^2 + 2)
    ial = (2 * softplus(-E2 / (2 + E2)) + softplus(1 / 3)) / 3  # v0, v2 true class 0; v1 true class 1
    expected = math.log(2) + 0.3 * ial  # f_FER's zero logits: CE = ln 2
    loss = hand_rmfer().pretraining_loss(FEATURES, LABELS)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_pretraining_loss_by_hand_with_the_released_codes_self_mask():
    # diagonal -1e7: no self-attention. row 0 (-, 0, 2) -> v0 = (e^2, 1) / (1 + e^2); row 1 (0, -, 0) -> v1 = (1, 0);
    # row 2 (2, 0, -) -> v2 = v0
    ial = (2 * softplus((1 - E2) / (1 + E2)) + softplus(1.0)) / 3
    loss = hand_rmfer(RELEASED_CODE_SELF_MASK).pretraining_loss(FEATURES, LABELS)
    assert loss.item() == pytest.approx(math.log(2) + 0.3 * ial, rel=1e-5)


def test_the_factorys_self_mask_is_the_one_the_loss_uses():
    released = create_model("rmfer-efficientnet-b2", num_classes=7, self_mask=RELEASED_CODE_SELF_MASK)
    assert released.self_mask == RELEASED_CODE_SELF_MASK  # and the two tests above: the loss uses self.self_mask


def test_test_time_logits_are_f_fer_of_the_features_alone():
    model = hand_rmfer()
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model.head.bias.copy_(torch.tensor([0.5, -0.5]))
        # (1, 0) -> (1.5, 2.5), (0, 1) -> (2.5, 3.5): no attention over the batch, no f_IAL
        torch.testing.assert_close(model(FEATURES[:2]), torch.tensor([[1.5, 2.5], [2.5, 3.5]]))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("rmfer-efficientnet-b2", num_classes=7, tau=0.5, lambda1=0.3).eval()


def test_the_real_model_classifies_each_image_on_its_own(model):
    images = torch.randn(4, 3, 260, 260, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        together = model(images)
        torch.testing.assert_close(together[:1], model(images[:1]), rtol=1e-4, atol=1e-5)
    assert together.shape == (4, 7) and not torch.allclose(together[0], together[1])
    assert model.input_size == 260 and model.labels[0] == "neutral" and len(model.labels) == 7
    assert (model.tau, model.lambda1, model.self_mask) == (0.5, 0.3, PAPER_SELF_MASK)
