"""RMFER on EfficientNet-B2: f_Feat + f_FER at test time; IAL and ACL heads used only in training.

    model = create_model("rmfer-efficientnet-b2", num_classes=7)        # random init (offline)
    logits = model(x)                                                    # f_FER(f_Feat(x)), x: (N, 3, 260, 260)
    loss = model.pretraining_loss(x, y)                                  # L_pre = L_FER + lambda1 * L_IAL
    loss = model.acl_loss(crops, video, person, frame, groups, tau=0.1, gamma=0.1)   # L_ACL on face-track groups

The hyper-parameters (projection width, tau, lambda1, the ACL temperature, gamma and windows) are arguments so that
configs/recognition/rmfer-efficientnet-b2.yaml holds them; gamma = 0.1 and the +-5 / +-30 frame windows are the
paper's. `groups` (recognition.losses.ACLGroups) says which crop of the batch is which group's anchor, positive
and negative: the ACL batch sampler's layout (ACLBatchSampler.layout); only the anchors are contrasted.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from recognition.losses import (ACL_PAPER, PAPER_SELF_MASK, ACLGroups, attention_contrastive_loss, check_acl_groups,
                                inter_sample_attention)
from recognition.models.cnn import CNNClassifier, build_backbone, emotion_labels, experiment_input_size
from recognition.registry import register_model

INPUT_SIZE = 260  # the paper's


class RMFER(CNNClassifier):
    """backbone f_Feat (N, 3, 260, 260) -> (N, 1408); f_FER linear -> (N, C); H MLP -> (N, P); f_IAL linear -> (N, C)."""

    def __init__(self, backbone: nn.Module, labels: tuple[str, ...], projection_dim: int, tau: float,
                 lambda1: float, self_mask: float, input_size: int = INPUT_SIZE):
        width = backbone.num_features
        super().__init__(backbone, input_size, labels, head=nn.Linear(width, len(labels)))  # head = f_FER
        self.projection = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, projection_dim))
        self.ial_classifier = nn.Linear(width, len(labels))  # f_IAL
        self.tau, self.lambda1, self.self_mask = tau, lambda1, self_mask

    def pretraining_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """L_pre = CE(f_FER(f_i), y_i) + lambda1 * CE(f_IAL(v_i), y_i), v from inter-sample attention; a scalar."""
        features = self.backbone(images)
        attended = inter_sample_attention(features, self.projection(features), self.tau, self.self_mask)
        return F.cross_entropy(self.head(features), labels) + self.lambda1 * F.cross_entropy(
            self.ial_classifier(attended), labels)

    training_loss = pretraining_loss  # the supervised objective scripts/train_recognition.py optimises

    def acl_loss(self, images: torch.Tensor, video: torch.Tensor, person: torch.Tensor, frame: torch.Tensor,
                 groups: ACLGroups, tau: float, gamma: float, positive_window: int = 5, negative_gap: int = 30,
                 variant: str = ACL_PAPER) -> torch.Tensor:
        """L_ACL over M unlabeled crops (M, 3, S, S) with their (M,) video, person and frame indices, laid out in
        `groups`; ValueError when a group's crops are not its anchor's candidates (a layout that does not match)."""
        groups = groups.to(images.device)
        check_acl_groups(groups, video, person, frame, positive_window, negative_gap)
        embedded = self.projection(self.backbone(images))
        return attention_contrastive_loss(embedded, groups, tau, gamma, variant)


@register_model("rmfer-efficientnet-b2")
def rmfer_efficientnet_b2(pretrained: str | Path | None = None, num_classes: int = 7, projection_dim: int = 128,
                          tau: float = 1.0, lambda1: float = 1.0, self_mask: float = PAPER_SELF_MASK,
                          input_size: int | None = None) -> RMFER:
    """RMFER with an EfficientNet-B2 f_Feat at 260 px (input_size: another side for cheaper experiments only);
    `pretrained` = the user's timm ImageNet weights file."""
    name = "rmfer-efficientnet-b2"
    size = experiment_input_size(name, input_size, INPUT_SIZE)
    backbone = build_backbone(name, "efficientnet_b2", pretrained)
    return RMFER(backbone, emotion_labels(num_classes), projection_dim, tau, lambda1, self_mask, size)
