"""The training losses of the recognition families, each written as its paper states it.

    caption-CLIP : label_aware_clip_loss   (several images of a batch share one class sentence)
    Exp-CLIP     : symmetric_info_nce      (projected image features vs LLM target embeddings)
    RMFER        : inter_sample_attention + cross-entropy (IAL), attention_contrastive_loss over ACLGroups (ACL)

Shapes: N = batch size, D = embedding width; ACL: a batch of M crops in G groups, each one anchor, P positives and
N negatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

PAPER_SELF_MASK = 1e-6
"""RMFER paper: the diagonal of the similarity matrix is set to 1e-6 before the softmax."""
RELEASED_CODE_SELF_MASK = -1e7
"""RMFER's released code sets the diagonal to -1e7 instead (no self-attention at all); exposed as an option."""


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_j targets_ij log softmax(logits)_ij; targets rows sum to 1."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def label_aware_clip_loss(
    image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, labels: torch.Tensor, logit_scale: float | torch.Tensor
) -> torch.Tensor:
    """Caption-CLIP's contrastive loss when images of one class share one sentence.

    image_embeddings, text_embeddings: (N, D), row i is image i and the sentence of its class; labels: (N,) ints.
    logits = scale * norm(img) @ norm(txt).T; the target of row i is uniform over the columns whose label equals
    label i (not the identity matrix: the same sentence appearing twice in a batch is not a negative). When the
    encodings of one sentence are identical the two targets give the same value; they differ when they are not
    (text-encoder dropout during training), where the identity target would repel an image from its own sentence.
    Returns the mean of the image->text and text->image soft cross-entropies (a scalar).
    """
    image = F.normalize(image_embeddings, dim=-1)
    text = F.normalize(text_embeddings, dim=-1)
    logits = logit_scale * image @ text.T
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)
    targets = same / same.sum(dim=1, keepdim=True)
    return 0.5 * (_soft_cross_entropy(logits, targets) + _soft_cross_entropy(logits.T, targets))


def symmetric_info_nce(
    projected_images: torch.Tensor, target_embeddings: torch.Tensor, logit_scale: float | torch.Tensor
) -> torch.Tensor:
    """Exp-CLIP's alignment loss: symmetric InfoNCE with the pairs on the diagonal.

    projected_images: (N, 4096), the linear head's output; target_embeddings: (N, 4096), the LLM vectors.
    Both are L2-normalised; logits = logit_scale * P @ T.T (CLIP's own logit scale, i.e. 1 / temperature).
    Returns (CE(logits, arange) + CE(logits.T, arange)) / 2.
    """
    projected = F.normalize(projected_images, dim=-1)
    targets = F.normalize(target_embeddings, dim=-1)
    logits = logit_scale * projected @ targets.T
    index = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, index) + F.cross_entropy(logits.T, index))


def inter_sample_attention(
    features: torch.Tensor, projected: torch.Tensor, tau: float, self_mask: float = PAPER_SELF_MASK
) -> torch.Tensor:
    """RMFER's inter-sample attention: every sample's feature rebuilt from the other samples of the batch.

    features: (N, D) f_Feat outputs f_j; projected: (N, P) the projection head H(f_j).
    s_ij = cos(H f_i, H f_j), diagonal replaced by `self_mask`; a_ij = softmax_j(s_ij / tau); v_i = sum_j a_ij f_j.
    Returns v: (N, D), which the IAL classifier f_IAL maps to logits for L_IAL = CE(f_IAL(v_i), y_i).
    """
    unit = F.normalize(projected, dim=-1)
    similarity = unit @ unit.T
    eye = torch.eye(similarity.shape[0], dtype=torch.bool, device=similarity.device)
    similarity = similarity.masked_fill(eye, self_mask)
    attention = torch.softmax(similarity / tau, dim=1)
    return attention @ features


ACL_PAPER = "paper"
"""RMFER's ACL loss as the paper writes it (eq. 10): the mean over the anchor's kept positives of
-log(exp(s_ap / tau) / sum_{k in P u N} exp(s_ak / tau))."""
ACL_RELEASED_CODE = "released-code"
"""The released code's variant (yunseongcho/RMFER, models/model.py `contrastive_loss`; its README says the full ACL
training code is still to come): one log of the summed positives,
-log(sum_{p in P} exp(s_ap / tau) / sum_{k in P u N} exp(s_ak / tau)). It differs from the paper's per-positive
mean whenever an anchor keeps more than one positive; exposed as an option, the paper's is the default."""
ACL_VARIANTS = (ACL_PAPER, ACL_RELEASED_CODE)


@dataclass(frozen=True)
class ACLGroups:
    """Which crop of an ACL batch plays which part: G groups, each one anchor with P positives and N negatives.

    anchor: (G,), positive: (G, P), negative: (G, N), int64 indices into the batch's M crops. Only anchors are
    contrasted (RMFER's anchor semantics): a positive or negative is never an anchor of its own. An index may repeat
    within a group (drawn with replacement); each copy counts, as in the released code.
    """

    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor

    def __post_init__(self) -> None:
        groups = self.anchor.shape[0] if self.anchor.ndim == 1 else -1
        for name, part in (("positive", self.positive), ("negative", self.negative)):
            if part.ndim != 2 or part.shape[0] != groups or part.shape[1] < 1:
                raise ValueError(f"ACLGroups.{name} must be (G, K >= 1) for G = {groups} anchors, got "
                                 f"{tuple(part.shape)}")

    @classmethod
    def consecutive(cls, groups: int, positives: int, negatives: int) -> ACLGroups:
        """The released code's batch layout (recognition.data.face_tracks.ACLBatchSampler's): G blocks of
        1 + P + N crops, each an anchor, then its P positives, then its N negatives."""
        start = torch.arange(groups)[:, None] * (1 + positives + negatives)
        return cls(start[:, 0], start + 1 + torch.arange(positives), start + 1 + positives + torch.arange(negatives))

    def to(self, device: torch.device | str) -> ACLGroups:
        return ACLGroups(self.anchor.to(device), self.positive.to(device), self.negative.to(device))


def _pair_kinds(a: tuple, b: tuple, positive_window: int, negative_gap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(is positive, is negative) of crops a and b, each (video, person, frame) of broadcastable int tensors."""
    same_video, same_person = a[0] == b[0], a[1] == b[1]
    gap = (a[2] - b[2]).abs()
    return same_video & ~same_person & (gap <= positive_window), same_video & same_person & (gap > negative_gap)


def acl_candidates(video: torch.Tensor, person: torch.Tensor, frame: torch.Tensor, positive_window: int = 5,
                   negative_gap: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Which crops may be an anchor's positives and negatives (what ACLBatchSampler draws from).

    video, person, frame: (N,) ints, where each crop comes from. Positive = same video, another person,
    |frame difference| <= positive_window (people reacting to the same moment); negative = same video, same person,
    |frame difference| > negative_gap. Returns (positive, negative): (N, N) bool, row = anchor.
    """
    crops = (video, person, frame)
    return _pair_kinds(tuple(t[:, None] for t in crops), tuple(t[None, :] for t in crops), positive_window,
                       negative_gap)


def check_acl_groups(groups: ACLGroups, video: torch.Tensor, person: torch.Tensor, frame: torch.Tensor,
                     positive_window: int, negative_gap: int) -> None:
    """ValueError unless every group's positives and negatives are candidates of its anchor (acl_candidates):
    a batch whose layout is not the one `groups` describes fails here instead of training on wrong pairs."""
    crops = (video, person, frame)
    if max(int(part.max()) for part in (groups.anchor, groups.positive, groups.negative)) >= len(video):
        raise ValueError(f"ACLGroups index crops beyond the batch of {len(video)}")
    anchor = tuple(t[groups.anchor][:, None] for t in crops)
    positive_ok, _ = _pair_kinds(anchor, tuple(t[groups.positive] for t in crops), positive_window, negative_gap)
    _, negative_ok = _pair_kinds(anchor, tuple(t[groups.negative] for t in crops), positive_window, negative_gap)
    if not (positive_ok.all() and negative_ok.all()):
        raise ValueError("the ACL batch does not follow its group layout: a positive or negative crop is not a "
                         "candidate of its group's anchor")


def anchor_similarities(embedded: torch.Tensor, groups: ACLGroups) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarity of each group's anchor to its positives and to its negatives.

    embedded: (M, D) the crops' projections H(f); returns (positive (G, P), negative (G, N)).
    """
    unit = F.normalize(embedded, dim=-1)
    anchor = unit[groups.anchor][:, None, :]  # (G, 1, D)
    return (anchor * unit[groups.positive]).sum(dim=-1), (anchor * unit[groups.negative]).sum(dim=-1)


def keep_extreme(similarity: torch.Tensor, gamma: float, largest: bool) -> torch.Tensor:
    """Per row, the ceil(gamma * K) entries of largest (or smallest) similarity: (G, K) -> (G, K) bool.

    RMFER keeps the top-gamma most similar positives and the bottom-gamma least similar negatives of each anchor.
    The released code thresholds at torch.quantile(s, 1 - gamma) (strictly above; below quantile(s, gamma) for
    negatives), which keeps the same count for the paper's 50 per anchor and gamma 0.1 (5).
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    width = similarity.shape[1]
    count = max(1, math.ceil(gamma * width - 1e-9))  # 1e-9: 0.1 * 30 is 3.0000000000000004, which is 3, not 4
    index = similarity.topk(count, dim=1, largest=largest).indices
    return torch.zeros_like(similarity, dtype=torch.bool).scatter_(1, index, True)


def anchor_nt_xent(positive: torch.Tensor, negative: torch.Tensor, keep_positive: torch.Tensor,
                   keep_negative: torch.Tensor, tau: float, variant: str = ACL_PAPER) -> torch.Tensor:
    """RMFER's ACL contrast of each anchor against its kept pairs, averaged over the G anchors (a scalar).

    positive: (G, P), negative: (G, N) anchor similarities s_ap, s_an; keep_*: the same shapes, bool (at least one
    kept per row). With P' and N' the kept ones, D_a = sum_{k in P' u N'} exp(s_ak / tau):
        ACL_PAPER:         L_a = -1/|P'| sum_{p in P'} log(exp(s_ap / tau) / D_a)
        ACL_RELEASED_CODE: L_a = -log(sum_{p in P'} exp(s_ap / tau) / D_a)
    """
    if variant not in ACL_VARIANTS:
        raise ValueError(f"ACL variant must be one of {ACL_VARIANTS}, got {variant!r}")
    kept_positive = (positive / tau).masked_fill(~keep_positive, float("-inf"))
    kept_negative = (negative / tau).masked_fill(~keep_negative, float("-inf"))
    log_denominator = torch.logsumexp(torch.cat([kept_positive, kept_negative], dim=1), dim=1)  # (G,)
    if variant == ACL_RELEASED_CODE:
        return (log_denominator - torch.logsumexp(kept_positive, dim=1)).mean()
    log_ratio = (positive / tau - log_denominator[:, None]).masked_fill(~keep_positive, 0.0)
    return (-log_ratio.sum(dim=1) / keep_positive.sum(dim=1)).mean()


def attention_contrastive_loss(embedded: torch.Tensor, groups: ACLGroups, tau: float, gamma: float,
                               variant: str = ACL_PAPER) -> torch.Tensor:
    """RMFER's L_ACL over one batch of anchor groups (a scalar).

    embedded: (M, D) the crops' projections H(f); groups: which crop is which group's anchor, positive, negative.
    Of each anchor's P positives the ceil(gamma * P) most similar are kept, of its N negatives the ceil(gamma * N)
    least similar (chosen on detached similarities, as the released code does under no_grad); then anchor_nt_xent.
    """
    positive, negative = anchor_similarities(embedded, groups)
    keep_positive = keep_extreme(positive.detach(), gamma, largest=True)
    keep_negative = keep_extreme(negative.detach(), gamma, largest=False)
    return anchor_nt_xent(positive, negative, keep_positive, keep_negative, tau, variant)
