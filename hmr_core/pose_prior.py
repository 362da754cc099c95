"""A pose prior for the synthetic world: anatomical joint limits, whole-body archetypes, no self-penetration.

HMR's discriminator learns what a real body looks like from a pool of mocap poses (CMU fitted with MoSh;
paper, Sec. 3.3 and 4). The synthetic world has no mocap, so this module makes a pool that behaves like
one: poses are drawn around whole-body archetypes (standing, walking, running, sitting, crouching,
reaching, bending, arms raised, lying), blended and jittered, so the joints are correlated as in
captured motion; every joint is kept inside its anatomical range of motion; and a body that would pass
through itself is rejected (chapter "Data").

The pieces live in their own modules: the joint limits in ``hmr_core.joint_limits``, the capsules of the
self-penetration test in ``hmr_core.self_contact``, the archetypes in ``hmr_core.archetypes``, and the
pool files in ``hmr_core.pose_pool``; this module draws the poses.

``python -m hmr_core.pose_prior --num 10000 --out pool.npz`` writes a pool and prints the rejection rate.

Letters in shapes: B batch, J joints (24), C capsules, P capsule pairs, A archetypes.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from hmr_core import constants
from hmr_core.archetypes import ARCHETYPES, Archetype, archetype_tensors, noise_scales
from hmr_core.augment import flip_pose
from hmr_core.joint_limits import anatomical_to_pose, clamp_to_limits, joint_limit_violations
from hmr_core.pose_pool import save_pose_pool
from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from hmr_core.self_contact import BodyCapsules, default_capsules, self_penetration


@dataclass(frozen=True)
class PosePriorConfig:
    """How poses are drawn (defaults make the synthetic world's pool)."""

    blend_probability: float = 0.5  # share of samples that blend two archetypes
    max_blend: float = 0.5  # weight of the second archetype, uniform in [0, max_blend]
    noise_scale: float = 1.0  # multiplies every archetype's noise
    mirror_probability: float = 0.5  # left-right mirrored samples, so the pool is symmetric
    reject_penetration: bool = True  # redraw bodies whose capsules intersect
    max_rounds: int = 50  # give up after this many redraw rounds
    archetype_weights: dict[str, float] = field(default_factory=dict)  # override ``Archetype.weight`` by name


class PoseSamples(NamedTuple):
    """What ``sample_poses`` returns.

    Attributes:
        pose: (B, 72) axis-angle θ with the global orientation left at zero.
        global_orient: (B, 3) axis-angle orientation drawn for each body in SMPL's frame (y up): a random
            heading, plus the archetype's tilt (lying bodies lie down). The datasets' camera frame has y
            down: there an upright body's global orientation is this one turned by π about x.
        archetype: (B,) long, index into ``ARCHETYPES`` of the main archetype.
        num_drawn: bodies drawn in all, rejected ones included.
        num_rejected: bodies rejected for self-penetration.
    """

    pose: torch.Tensor
    global_orient: torch.Tensor
    archetype: torch.Tensor
    num_drawn: int
    num_rejected: int

    @property
    def rejection_rate(self) -> float:
        """The share of drawn bodies rejected for self-penetration."""
        return self.num_rejected / max(self.num_drawn, 1)

    def pose_with_global_orient(self) -> torch.Tensor:
        """(B, 72) θ with ``global_orient`` in its first 3 entries (as mocap pools store it)."""
        return torch.cat((self.global_orient, self.pose[:, 3:]), dim=1)


def _uniform(shape, low, high, generator, dtype):
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=dtype)


def sample_anatomical(num: int, generator: torch.Generator | None = None, config: PosePriorConfig = PosePriorConfig(),
                      archetypes: tuple[Archetype, ...] = ARCHETYPES) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw joint angles around blended archetypes, with noise, clamped to the joint limits.

    Each sample takes archetype a (and, with ``config.blend_probability``, a second archetype b with
    weight w ≤ ``config.max_blend``); each archetype contributes its mean plus its variations times
    uniform coefficients; Gaussian noise scaled to each joint's range of motion is added.

    Args:
        num: B, how many.
        generator: torch random generator.
        config: the sampling settings.
        archetypes: the archetypes.

    Returns:
        ``(angles, pitch, archetype)``: (B, 24, 3) anatomical angles in radians inside the limits
        (float64), (B,) body pitch in radians, and (B,) long index of the main archetype.
    """
    dtype = torch.float64
    arch = archetype_tensors(archetypes, dtype)
    weights = arch.weight.clone()
    for name, value in config.archetype_weights.items():
        names = [a.name for a in archetypes]
        if name not in names:
            raise KeyError(f"unknown archetype {name!r}; the archetypes are {names}")
        weights[names.index(name)] = value
    first = torch.multinomial(weights, num, replacement=True, generator=generator)
    second = torch.multinomial(weights, num, replacement=True, generator=generator)
    blend = _uniform(num, 0.0, config.max_blend, generator, dtype)
    blend = blend * (torch.rand(num, generator=generator, dtype=dtype) < config.blend_probability)

    def draw(index):
        ranges = arch.variation_range[index]  # (B, K, 2)
        coeff = _uniform(ranges.shape[:2], 0.0, 1.0, generator, dtype) * (ranges[..., 1] - ranges[..., 0]) + ranges[..., 0]
        # angles[b, j, k] = mean[b, j, k] + Σ_v coeff[b, v] · variations[b, v, j, k]
        angles = arch.mean[index] + torch.einsum("bv,bvjk->bjk", coeff, arch.variations[index])
        pitch = arch.pitch[index, 0] + arch.pitch[index, 1] * torch.randn(num, generator=generator, dtype=dtype)
        return angles, pitch

    angles_a, pitch_a = draw(first)
    angles_b, pitch_b = draw(second)
    w = blend[:, None, None]
    angles = (1 - w) * angles_a + w * angles_b
    pitch = (1 - blend) * pitch_a + blend * pitch_b
    noise = ((1 - blend) * arch.noise[first] + blend * arch.noise[second]) * config.noise_scale  # (B,)
    sigma = noise[:, None, None] * noise_scales(dtype)  # (B, 24, 3)
    angles = angles + sigma * torch.randn(angles.shape, generator=generator, dtype=dtype)
    return clamp_to_limits(angles), pitch, first


def sample_global_orient(pitch: torch.Tensor, spin: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Orientation of whole bodies: R = R_y(heading) · R_x(pitch) · R_y(spin about the body's long axis).

    Args:
        pitch: (B,) forward tilt in radians (-π/2 lies on the back before the spin).
        spin: (B,) bool, whether the body also turns at random about its own long axis.
        generator: torch random generator.

    Returns:
        (B, 3) axis-angle global orientations in SMPL's frame (y up).
    """
    num, dtype = pitch.shape[0], pitch.dtype
    zero = torch.zeros(num, dtype=dtype)
    heading = _uniform(num, -math.pi, math.pi, generator, dtype)
    roll = _uniform(num, -math.pi, math.pi, generator, dtype) * spin
    r_heading = axis_angle_to_matrix(torch.stack((zero, heading, zero), -1))
    r_pitch = axis_angle_to_matrix(torch.stack((pitch, zero, zero), -1))
    r_spin = axis_angle_to_matrix(torch.stack((zero, roll, zero), -1))
    return matrix_to_axis_angle(r_heading @ r_pitch @ r_spin)


def sample_poses(num: int, generator: torch.Generator | None = None, config: PosePriorConfig = PosePriorConfig(),
                 capsules: BodyCapsules | None = None,
                 archetypes: tuple[Archetype, ...] = ARCHETYPES) -> PoseSamples:
    """Draw ``num`` plausible whole-body poses: archetypes, joint limits, no self-penetration.

    Args:
        num: B, how many.
        generator: torch random generator (seed it for a reproducible pool).
        config: the sampling settings.
        capsules: the body used for the penetration test; None builds ``default_capsules()``.
        archetypes: the archetypes.

    Returns:
        ``PoseSamples`` (float32 tensors), with the numbers of drawn and rejected bodies.

    Raises:
        RuntimeError: if ``config.max_rounds`` rounds of redrawing still leave too few bodies.
    """
    if num < 0:
        raise ValueError(f"num must be ≥ 0, got {num}")
    if config.reject_penetration and capsules is None:
        capsules = default_capsules()
    spins = torch.tensor([a.spin for a in archetypes])
    poses = [torch.zeros(0, constants.POSE_DIM, dtype=torch.float64)]
    orients = [torch.zeros(0, 3, dtype=torch.float64)]
    kinds = [torch.zeros(0, dtype=torch.long)]
    have, drawn, rejected, rounds = 0, 0, 0, 0
    while have < num and rounds < config.max_rounds:
        rounds += 1
        # Draw a little more than is missing, since some are rejected.
        batch = max(64, int(1.3 * (num - have)))
        angles, pitch, kind = sample_anatomical(batch, generator, config, archetypes)
        pose = anatomical_to_pose(angles)  # (batch, 72), root zero
        mirror = torch.rand(batch, generator=generator, dtype=pose.dtype) < config.mirror_probability
        pose = torch.where(mirror[:, None], flip_pose(pose), pose)
        drawn += batch
        if config.reject_penetration:
            ok = ~self_penetration(pose, capsules)
            rejected += int((~ok).sum())
            pose, pitch, kind = pose[ok], pitch[ok], kind[ok]
        orient = sample_global_orient(pitch, spins[kind], generator)
        poses.append(pose)
        orients.append(orient)
        kinds.append(kind)
        have += pose.shape[0]
    if have < num:
        raise RuntimeError(f"only {have} of {num} poses passed the penetration test after {config.max_rounds} "
                           f"rounds ({rejected} of {drawn} rejected); loosen the archetypes or the capsules")
    pose = torch.cat(poses)[:num]
    return PoseSamples(pose=pose.float(), global_orient=torch.cat(orients)[:num].float(),
                       archetype=torch.cat(kinds)[:num], num_drawn=drawn, num_rejected=rejected)


def rejection_rates(num: int = 10_000, generator: torch.Generator | None = None,
                    config: PosePriorConfig = PosePriorConfig(), capsules: BodyCapsules | None = None,
                    archetypes: tuple[Archetype, ...] = ARCHETYPES) -> dict[str, float]:
    """The share of drawn bodies the penetration test rejects, overall and per archetype.

    Args:
        num: bodies to draw.
        generator: torch random generator.
        config: the sampling settings (``reject_penetration`` is ignored: everything is tested).
        capsules: the body; None uses ``default_capsules()``.
        archetypes: the archetypes.

    Returns:
        ``{"all": rate, "<archetype>": rate, ...}``.
    """
    capsules = default_capsules() if capsules is None else capsules
    angles, _, kind = sample_anatomical(num, generator, config, archetypes)
    pose = anatomical_to_pose(angles)
    bad = self_penetration(pose, capsules)
    rates = {"all": float(bad.double().mean())}
    for i, arch in enumerate(archetypes):
        mine = kind == i
        rates[arch.name] = float(bad[mine].double().mean()) if mine.any() else float("nan")
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hmr_core.pose_prior", description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=10_000, help="poses to draw (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("pose_prior_pool.npz"), help="output .npz (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    capsules = default_capsules()
    generator = torch.Generator().manual_seed(args.seed)
    samples = sample_poses(args.num, generator, capsules=capsules)
    betas = torch.randn(args.num, constants.NUM_BETAS, generator=generator)
    save_pose_pool(args.out, samples, betas)
    rates = rejection_rates(args.num, torch.Generator().manual_seed(args.seed + 1), capsules=capsules)
    elapsed = time.perf_counter() - start
    violations = joint_limit_violations(samples.pose.double())
    print(f"# pose prior, {datetime.date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"capsule radii from the {capsules.radii_from}; {len(capsules.pairs)} capsule pairs tested")
    print(f"wrote {args.num} poses to {args.out} in {elapsed:.1f} s")
    print(f"rejection rate (self-penetration): {samples.rejection_rate:.2%} "
          f"({samples.num_rejected} of {samples.num_drawn} drawn)")
    print("per archetype, on a fresh draw of the same size:")
    for name, rate in rates.items():
        print(f"  {name:12s} {rate:7.2%}")
    print(f"joints outside their limits in the pool: {float(violations.mean()):.4%} (clamped, so ~0)")


if __name__ == "__main__":
    sys.exit(main())
