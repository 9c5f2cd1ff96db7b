"""Jurisdiction presets for the compliance policy (issue #25, docs/compliance.md#jurisdiction-presets).

A preset is chosen when the platform is set up (the `COMPLIANCE_PRESET` setting) and says how many levels the
compliance policy may ever pay in that jurisdiction. It narrows the code's hard ceilings, never widens them:
`HARD_MAX_LEVELS` (3) and `HARD_MAX_PAYOUT_RATIO` (0.30) hold for every preset.

- ``china_strict``: one paid level, the sharer only. Chinese regulators have fined two-level 团队计酬 far below the
  criminal threshold of three levels (Chongqing Banan 2022: 13 % + 3 % over two levels, five distributors,
  ¥5,000), so direct-sale commission only is the safe setting in China.
- ``china_two_levels``: the sharer and their sponsor. Allowed, with a warning that cites that case and the risk of
  a second paid level being judged 团队计酬 under 《禁止传销条例》 art. 7(3). The default of a fresh install, so the
  demo's two-level plan runs with the warning visible; a production deployment in China chooses deliberately.
- ``international``: up to the code ceiling of three levels.

Pure: no ORM. The services (`commissions.services.plans`) refuse a policy or plan that breaks the preset in force;
the policy version records the preset it was published under (`CompliancePolicy.preset`), and the database refuses a
version whose levels exceed the preset it records.
"""

from dataclasses import dataclass

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, ngettext

from commissions.calculations import HARD_MAX_LEVELS, HARD_MAX_PAYOUT_RATIO

PRESET_CHINA_STRICT = "china_strict"
PRESET_CHINA_TWO_LEVELS = "china_two_levels"
PRESET_INTERNATIONAL = "international"
# config/settings.py validates COMPLIANCE_PRESET against the same three codes (it cannot import the apps).
PRESET_CODES = (PRESET_CHINA_STRICT, PRESET_CHINA_TWO_LEVELS, PRESET_INTERNATIONAL)


@dataclass(frozen=True)
class Preset:
    """What a jurisdiction allows. `warning` is empty when choosing it carries no known legal risk."""

    code: str
    label: Promise
    max_levels: int
    summary: Promise
    warning: Promise | str
    sources: tuple[Promise, ...]

    @property
    def max_payout_ratio(self):
        """The same for every preset: the hard ceiling (直销管理条例 art. 24)."""
        return HARD_MAX_PAYOUT_RATIO


BANAN_2022 = gettext_lazy(
    "Chongqing Banan district market regulator, 2022: a two-level 团队计酬 scheme (13 % to the sharer, 3 % to "
    "their sponsor, five distributors) was fined ¥5,000 as 传销 under 《禁止传销条例》, far below the criminal "
    "threshold of three levels."
)
REGULATION_ART_7 = gettext_lazy(
    "《禁止传销条例》 (State Council Order No. 444, 2005) art. 7(3): paying a person by the sales of the people they "
    "brought in (团队计酬) is 传销."
)
SPEC_CEILINGS = gettext_lazy(
    "SPEC §7: never more than 3 paid levels (the criminal threshold for 传销) and never more than 30 per cent of a "
    "line's net amount to members (《直销管理条例》 art. 24), in code and in the database."
)

PRESETS = {
    PRESET_CHINA_STRICT: Preset(
        code=PRESET_CHINA_STRICT,
        label=gettext_lazy("China (strict)"),
        max_levels=1,
        summary=gettext_lazy("One paid level: only the sharer earns on a sale; no upline earns anything."),
        warning="",
        sources=(BANAN_2022, REGULATION_ART_7, SPEC_CEILINGS),
    ),
    PRESET_CHINA_TWO_LEVELS: Preset(
        code=PRESET_CHINA_TWO_LEVELS,
        label=gettext_lazy("China (two levels)"),
        max_levels=2,
        summary=gettext_lazy("Two paid levels: the sharer and their sponsor."),
        warning=gettext_lazy(
            "Risk: Chinese regulators have fined two-level commission as 传销 (Chongqing Banan 2022: 13 % + 3 %, five "
            "distributors, ¥5,000). Paying a sponsor on their downline's sales can be judged 团队计酬 under "
            "《禁止传销条例》 art. 7(3) even below three levels. China (strict) pays the sharer only."
        ),
        sources=(BANAN_2022, REGULATION_ART_7, SPEC_CEILINGS),
    ),
    PRESET_INTERNATIONAL: Preset(
        code=PRESET_INTERNATIONAL,
        label=gettext_lazy("International"),
        max_levels=HARD_MAX_LEVELS,
        summary=gettext_lazy("Up to three paid levels: the code's hard ceiling."),
        warning="",
        sources=(SPEC_CEILINGS,),
    ),
}
PRESET_CHOICES = [(preset.code, preset.label) for preset in PRESETS.values()]


def preset_get(code: str) -> Preset:
    """The preset named `code`; ValueError for an unknown one."""
    try:
        return PRESETS[code]
    except KeyError:
        raise ValueError(f"unknown compliance preset {code!r}; one of {PRESET_CODES}") from None


def preset_configured() -> Preset:
    """The preset this deployment was set up with (the `COMPLIANCE_PRESET` setting)."""
    return preset_get(settings.COMPLIANCE_PRESET)


def preset_levels_violation(levels: int, preset: Preset, *, what: str = "policy") -> str | None:
    """Why paying `levels` levels breaks `preset` (a sentence for staff), or None if it does not.

    `what` is "policy" (a policy's max paid levels) or "plan" (a plan's levels)."""
    if levels <= preset.max_levels:
        return None
    values = {"levels": levels, "preset": preset.label, "max": preset.max_levels}
    if what == "plan":
        return (
            ngettext(
                "The plan pays %(levels)d levels; this platform was set up with the %(preset)s compliance preset, "
                "which allows at most %(max)d paid level.",
                "The plan pays %(levels)d levels; this platform was set up with the %(preset)s compliance preset, "
                "which allows at most %(max)d paid levels.",
                preset.max_levels,
            )
            % values
        )
    return (
        ngettext(
            "This platform was set up with the %(preset)s compliance preset, which allows at most %(max)d paid "
            "level; the policy asks for %(levels)d. The preset is chosen at set-up (COMPLIANCE_PRESET).",
            "This platform was set up with the %(preset)s compliance preset, which allows at most %(max)d paid "
            "levels; the policy asks for %(levels)d. The preset is chosen at set-up (COMPLIANCE_PRESET).",
            preset.max_levels,
        )
        % values
    )
