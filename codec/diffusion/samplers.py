"""Samplers by AUTOMATIC1111's names ("DPM++ 2M Karras", "Euler a", ...) as diffusers schedulers.

A name is an A1111 sampler (case does not matter), optionally followed by ``Karras`` for the
Karras et al. (2022) noise levels that A1111 uses with it: rho = 7 between the model's smallest
and largest sigma, which is what diffusers' ``use_karras_sigmas=True`` computes when the
timesteps span the whole training range (``timestep_spacing="linspace"``, set with it). The
short names of ``--scheduler`` (ddim, pndm, euler, euler-a, dpm++) remain. The algorithms are
A1111's; the numbers are diffusers', so the same seed does not give A1111's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A1111 sampler name -> (diffusers scheduler class, config overrides, whether Karras sigmas apply)
SAMPLERS: dict[str, tuple[str, dict, bool]] = {
    "DDIM": ("DDIMScheduler", {}, False),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}, False),
    "Euler": ("EulerDiscreteScheduler", {}, True),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}, False),
    "LMS": ("LMSDiscreteScheduler", {}, True),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, True),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}, True),
}
SHORT_NAMES = {"ddim": "DDIM", "pndm": "PLMS", "euler": "Euler", "euler-a": "Euler a", "dpm++": "DPM++ 2M"}
# --scheduler name -> (diffusers class name, config overrides, A1111 sampler name)
SCHEDULERS: dict[str, tuple[str, dict, str]] = {
    short: (SAMPLERS[name][0], SAMPLERS[name][1], name) for short, name in SHORT_NAMES.items()
}
KARRAS = "Karras"


@dataclass(frozen=True)
class Sampler:
    """One resolved choice: the A1111 name and the diffusers scheduler that runs it."""

    name: str  # A1111's sampler name, without the schedule: "DPM++ 2M"
    scheduler_class: str  # diffusers class name
    overrides: dict = field(default_factory=dict)
    karras: bool = False

    @property
    def schedule_type(self) -> str | None:
        """A1111's "Schedule type" field (written only when it is not the sampler's default)."""
        return KARRAS if self.karras else None

    @property
    def config(self) -> dict:
        """The overrides to pass to ``from_config`` of the pipeline's scheduler config."""
        if not self.karras:
            return dict(self.overrides)
        return {**self.overrides, "use_karras_sigmas": True, "timestep_spacing": "linspace"}


def resolve_sampler(name: str) -> Sampler:
    """The sampler a ``--scheduler`` / ``--sampler`` value names; ``ValueError`` (one line) if none."""
    text = " ".join(name.split())
    if text.lower() in SHORT_NAMES:
        text = SHORT_NAMES[text.lower()]
    karras = text.lower().endswith(" " + KARRAS.lower())
    base = text[: -len(KARRAS) - 1] if karras else text
    matches = [known for known in SAMPLERS if known.lower() == base.lower()]
    if not matches:
        known = ", ".join([*SHORT_NAMES, *SAMPLERS])
        raise ValueError(f'unknown sampler {name!r} (known: {known}; add " Karras" for Karras sigmas)')
    class_name, overrides, supports_karras = SAMPLERS[matches[0]]
    if karras and not supports_karras:
        with_karras = ", ".join(known for known, (_, _, ok) in SAMPLERS.items() if ok)
        raise ValueError(f"{matches[0]} has no Karras schedule here (Karras works with: {with_karras})")
    return Sampler(matches[0], class_name, overrides, karras)


def make_scheduler(sampler: Sampler, base_config):
    """A fresh diffusers scheduler for ``sampler`` from the pipeline's own scheduler config."""
    import diffusers

    return getattr(diffusers, sampler.scheduler_class).from_config(base_config, **sampler.config)
