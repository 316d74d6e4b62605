"""GAN losses and the stage-2 teacher regulariser.

Adversarial: the non-saturating logistic loss and lazy R1 (StyleGAN2). Teacher, the paper's
"inverse" mode: a generated patch is brought down into the frozen global generator's frame (R
pixels across the canvas) and compared there, over its window only, with what the teacher
renders. Bringing the patch down rather than the teacher up means the student is only asked to
agree with the teacher at the teacher's resolution: the detail above it is the student's own.
On stage 2's global steps the student's whole canvas at R is compared with the teacher's as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .filters import per_sample_blur
from .lpips import LocalLPIPS
from .render import pixel_grid


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean squared norm of D's gradient at the real images (real must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


def teacher_frame_grid(transform: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each teacher pixel (R x R over the canvas): its position in patch coordinates, as a
    grid_sample grid, and whether its whole footprint lies inside the patch's window."""
    b = transform.shape[0]
    canvas = pixel_grid(resolution, transform.device)  # R x R x 3: teacher pixels on the canvas
    inverse = torch.linalg.inv(transform.float())  # patch = T^-1 @ canvas
    patch = torch.einsum("bij,hwj->bhwi", inverse[:, :2], canvas)  # b x R x R x 2
    # A teacher pixel is half a teacher pixel wide around its centre: in patch units that is
    # 0.5 / R divided by the window width e = T[0, 0].
    half_pixel = (0.5 / resolution) / transform[:, 0, 0].float().abs()
    inside = (patch.abs() <= (0.5 - half_pixel).view(b, 1, 1, 1)).all(-1)
    # grid_sample with align_corners=False puts -1 and 1 on the outer pixel edges: patch -0.5, 0.5.
    return patch * 2, inside.unsqueeze(1).float()


def to_teacher_frame(patch: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor,
                     resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The generated patch seen at the teacher's resolution, placed on the teacher's canvas; mask.

    Antialiasing: each patch pixel is 1/S of the canvas and a teacher pixel 1/R, so a teacher
    pixel covers S/R patch pixels across; averaging over that box before sampling is the area
    downscale (batched: one grouped convolution, each sample with its own width).
    """
    blurred = per_sample_blur(patch, scale.to(patch.dtype) / resolution)
    grid, mask = teacher_frame_grid(transform, resolution)
    sampled = F.grid_sample(blurred, grid.to(patch.dtype), mode="bilinear", padding_mode="border",
                            align_corners=False)
    return sampled, mask.to(patch.dtype)


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each sample's window, then over samples: every patch counts the same whatever its
    window's size, and a batch split across ranks averages to the same value."""
    per_sample = ((a - b).abs() * mask).sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2, 3)) * a.shape[1]).clamp(min=1)
    return per_sample.mean()


def is_whole_frame(transform: torch.Tensor, size: int, resolution: int) -> bool:
    """A global view: the student renders the teacher's own pixels (T = identity at S = p = R)."""
    return size == resolution and bool((transform == torch.eye(3, dtype=transform.dtype,
                                                               device=transform.device)).all())


def teacher_loss(student_patch: torch.Tensor, teacher_image: torch.Tensor, transform: torch.Tensor,
                 scale: torch.Tensor, lpips: LocalLPIPS | None = None, lpips_weight: float = 1.0
                 ) -> torch.Tensor:
    resolution = teacher_image.shape[-1]
    if is_whole_frame(transform, student_patch.shape[-1], resolution):
        # Stage 2's global steps: pixel for pixel, over the whole frame; resampling would only blur.
        seen, mask = student_patch, torch.ones_like(student_patch[:, :1])
    else:
        seen, mask = to_teacher_frame(student_patch, transform, scale, resolution)
    loss = masked_l1(seen, teacher_image, mask)
    if lpips is not None:
        loss = loss + lpips_weight * lpips(seen, teacher_image, mask)
    return loss
