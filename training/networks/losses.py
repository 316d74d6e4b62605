"""GAN losses and the stage-2 teacher regulariser.

Adversarial: the non-saturating logistic loss and lazy R1 (StyleGAN2). Teacher, the paper's
"inverse" mode: a generated patch is brought down into the frozen global generator's frame (R
pixels across the canvas) and compared there, over its window only, with what the teacher
renders. Bringing the patch down rather than the teacher up means the student is only asked to
agree with the teacher at the teacher's resolution: the detail above it is the student's own,
which is why the way down is a windowed sinc (filters.lanczos_rows), not an area average.
On stage 2's global steps the student's whole canvas at R is compared with the teacher's as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .filters import lanczos_rows
from .lpips import LocalLPIPS


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean squared norm of D's gradient at the real images (real must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


def teacher_pixels_in_patch(transform: torch.Tensor, resolution: int, side: int
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where the teacher's pixel rows and columns (R across the canvas) fall in a side x side
    patch, in patch pixels (pixel j's centre at j + 0.5), and which of them the loss compares:
    x, y, inside_x, inside_y, each b x R.

    Compared are the teacher pixels whose centre lies at least one teacher pixel inside the
    window's edge. The low-pass reaches three teacher pixels, and where it is cut off by the
    window's edge it passes a fine texture: about a tenth of it in the outermost ring of teacher
    pixels, a quarter of that in the next, a hundredth inside. At S = R nothing is filtered
    (the kernel's zeros fall on the other pixels), and every pixel whose footprint lies inside
    counts, as on a global step.

    T is diagonal (DESIGN.md 3: a scale and an offset per axis), so each axis maps on its own.
    """
    t = transform.float()
    centres = (torch.arange(resolution, device=t.device, dtype=torch.float32) + 0.5) / resolution - 0.5
    axes = []
    for axis in (0, 1):
        e, offset = t[:, axis, axis].unsqueeze(1), t[:, axis, 2].unsqueeze(1)
        patch = (centres - offset) / e  # patch coordinates in [-0.5, 0.5] inside the window
        # A teacher pixel is 1 / R of the canvas: 1 / R / e in patch units; its footprint half that.
        margin = torch.where(e * resolution < side - 1e-6, 1.0, 0.5)
        inside = patch.abs() <= 0.5 - (margin / resolution) / e.abs() + 1e-6
        axes.append(((patch + 0.5) * side, inside))
    (x, inside_x), (y, inside_y) = axes
    return x, y, inside_x, inside_y


def to_teacher_frame(patch: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor,
                     resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The generated patch seen at the teacher's resolution, placed on the teacher's canvas; mask.

    Each patch pixel is 1/S of the canvas and a teacher pixel 1/R, so a teacher pixel spans S/R
    patch pixels. The patch is low-passed by a Lanczos-3 stretched to that span (cut off at the
    teacher's Nyquist) and sampled at the teacher's pixel centres, in one separable pair of
    per-sample matrices. A box (area average) passed about a quarter of stripes at 1.5x the
    teacher's Nyquist, and so charged the student for exactly the detail stage 2 must add
    (bench/bench_band_limits.py).
    """
    side = patch.shape[-1]
    x, y, inside_x, inside_y = teacher_pixels_in_patch(transform, resolution, side)
    width = scale.float() / resolution
    rows_x = lanczos_rows(x, width, side).to(patch.dtype)  # b x R x p
    rows_y = lanczos_rows(y, width, side).to(patch.dtype)  # patches are square
    sampled = torch.einsum("biy,bcyx,bjx->bcij", rows_y, patch, rows_x)
    mask = (inside_y.unsqueeze(2) & inside_x.unsqueeze(1)).unsqueeze(1)
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
