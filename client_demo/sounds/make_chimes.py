"""Writes the overlay's alert chimes, one WAV per gift tier, next to this file.

The sounds are made here from sine waves (no samples, no third-party
audio), so they are ours to ship. Run it again to rebuild them:

    python client_demo/sounds/make_chimes.py
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000
# Note frequencies in Hz.
C5, E5, G5, C6, E6, G6, C7 = 523.25, 659.25, 783.99, 1046.5, 1318.5, 1568.0, 2093.0

# Per tier: (start in seconds, frequency, length in seconds) of each bell strike.
TIERS: dict[str, list[tuple[float, float, float]]] = {
    "small": [(0.0, E6, 0.35)],
    "medium": [(0.0, C6, 0.4), (0.12, E6, 0.5)],
    "large": [(0.0, C6, 0.5), (0.11, E6, 0.5), (0.22, G6, 0.7)],
    "fullscreen": [
        (0.0, C5, 0.9),
        (0.12, E5, 0.8),
        (0.24, G5, 0.8),
        (0.36, C6, 0.9),
        (0.5, C7, 0.9),
    ],
}


def bell(frequency: float, seconds: float) -> list[float]:
    """One struck note: a sine with a soft overtone, a 5 ms attack, an exponential decay."""
    samples = []
    for n in range(int(seconds * RATE)):
        t = n / RATE
        envelope = min(1.0, t / 0.005) * math.exp(-t * 7.0 / seconds)
        tone = math.sin(2 * math.pi * frequency * t) + 0.3 * math.sin(4 * math.pi * frequency * t)
        samples.append(envelope * tone)
    return samples


def mix(strikes: list[tuple[float, float, float]]) -> list[float]:
    length = max(int(start * RATE) + int(seconds * RATE) for start, _, seconds in strikes)
    out = [0.0] * length
    for start, frequency, seconds in strikes:
        offset = int(start * RATE)
        for index, sample in enumerate(bell(frequency, seconds)):
            out[offset + index] += sample
    peak = max(abs(sample) for sample in out) or 1.0
    return [0.6 * sample / peak for sample in out]


def write(path: Path, samples: list[float]) -> None:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(RATE)
        file.writeframes(b"".join(struct.pack("<h", round(s * 32767)) for s in samples))


def main() -> None:
    here = Path(__file__).resolve().parent
    for tier, strikes in TIERS.items():
        write(here / f"{tier}.wav", mix(strikes))


if __name__ == "__main__":
    main()
