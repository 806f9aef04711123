"""Which market a request is for: its language and its recharge region. Pure.

Two markets are served: English with USD packs (region US, TikTok's) and
Simplified Chinese with CNY packs (region CN, Douyin's). A request chooses
with ``?lang=`` and ``?region=``; otherwise its ``Accept-Language`` header
decides the language (the first it prefers of those served), and the
language the region.
"""

from __future__ import annotations

from server.core.catalog import LANGUAGES
from server.errors import BadField

DEFAULT_LANGUAGE = "en"
REGION_OF_LANGUAGE = {"en": "US", "zh-CN": "CN"}


def preferred_language(accept_language: str | None) -> str:
    """The served language an ``Accept-Language`` header prefers most
    (``zh``, ``zh-CN``, ``zh-Hans`` are Simplified Chinese)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        served = _served(tag.strip())
        if served is not None and quality > 0:
            ranked.append((-quality, index, served))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def _served(tag: str) -> str | None:
    lowered = tag.lower()
    if lowered in ("zh", "zh-cn", "zh-hans", "zh-hans-cn", "zh-sg"):
        return "zh-CN"
    if lowered == "en" or lowered.startswith("en-"):
        return "en"
    return None


def market(lang: str | None, region: str | None, accept_language: str | None) -> tuple[str, str]:
    """(language, region) for a request; BadField for a value not served."""
    language = lang if lang is not None else preferred_language(accept_language)
    if language not in LANGUAGES:
        raise BadField(f"lang must be one of {', '.join(sorted(LANGUAGES))}")
    chosen = region if region is not None else REGION_OF_LANGUAGE[language]
    if chosen not in REGION_OF_LANGUAGE.values():
        raise BadField(f"region must be one of {', '.join(sorted(REGION_OF_LANGUAGE.values()))}")
    return language, chosen
