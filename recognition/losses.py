"""The training losses of the recognition families, each written as its paper states it.

    caption-CLIP : label_aware_clip_loss   (several images of a batch share one class sentence)
    Exp-CLIP     : symmetric_info_nce      (projected image features vs LLM target embeddings)
    RMFER        : inter_sample_attention + cross-entropy (IAL), acl_pair_masks + multi_positive_nt_xent (ACL)

Shapes: N = batch size, D = embedding width.
"""

from __future__ import annotations

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


def acl_pair_masks(
    video: torch.Tensor,
    person: torch.Tensor,
    frame: torch.Tensor,
    similarity: torch.Tensor,
    positive_window: int = 5,
    negative_gap: int = 30,
    gamma: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RMFER's ACL pairs among N unlabeled face crops of the batch.

    video, person, frame: (N,) ints, where each crop comes from; similarity: (N, N) cosine similarities.
    Candidates: positive = same video, another person, |frame difference| <= positive_window (people reacting to
    the same moment); negative = same video, same person, |frame difference| > negative_gap.
    Of each anchor's candidates keep the ceil(gamma * count) most similar positives and least similar negatives.
    Returns (positive, negative): (N, N) bool masks.
    """
    same_video = video[:, None] == video[None, :]
    same_person = person[:, None] == person[None, :]
    gap = (frame[:, None] - frame[None, :]).abs()
    candidates_pos = same_video & ~same_person & (gap <= positive_window)
    candidates_neg = same_video & same_person & (gap > negative_gap)
    return (
        _keep_extreme_fraction(similarity, candidates_pos, gamma, largest=True),
        _keep_extreme_fraction(similarity, candidates_neg, gamma, largest=False),
    )


def _keep_extreme_fraction(similarity: torch.Tensor, candidates: torch.Tensor, gamma: float, largest: bool) -> torch.Tensor:
    """Per row, the ceil(gamma * count) candidates with the largest (or smallest) similarity. (N, N) bool."""
    counts = candidates.sum(dim=1)
    keep = torch.ceil(gamma * counts.to(similarity.dtype)).long()
    fill = float("-inf") if largest else float("inf")
    ranked = similarity.masked_fill(~candidates, fill).argsort(dim=1, descending=largest)
    rank_of = torch.empty_like(ranked)
    rank_of.scatter_(1, ranked, torch.arange(ranked.shape[1], device=ranked.device).expand_as(ranked))
    return candidates & (rank_of < keep[:, None])


def multi_positive_nt_xent(
    similarity: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, tau: float
) -> torch.Tensor:
    """RMFER eq. 10, multi-positive NT-Xent over the selected pairs.

    similarity: (N, N) cosine similarities; positive, negative: (N, N) bool masks.
    For an anchor i with positives P_i and negatives N_i:
        L_i = -1/|P_i| sum_{p in P_i} log( exp(s_ip/tau) / sum_{k in P_i u N_i} exp(s_ik/tau) )
    Anchors without a positive are skipped; returns the mean of L_i (0 when no anchor has a positive).
    """
    logits = similarity / tau
    in_denominator = positive | negative
    log_denominator = torch.logsumexp(logits.masked_fill(~in_denominator, float("-inf")), dim=1)
    log_ratio = logits - log_denominator[:, None]
    positive_count = positive.sum(dim=1)
    has_positive = positive_count > 0
    if not has_positive.any():
        return similarity.sum() * 0.0
    per_anchor = -(log_ratio.masked_fill(~positive, 0.0)).sum(dim=1)[has_positive] / positive_count[has_positive]
    return per_anchor.mean()
