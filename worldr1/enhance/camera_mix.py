"""The camera moves a plain prompt is given: drawn from a weighted mix of camera sentences.

The LLM is not left to choose: a model has favourite moves, and the policy should see the mix the
prompt set is meant to have (World-R1's, by default). The draw is seeded by the line's text, so a
line keeps its moves when lines are added, removed or reordered around it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from worldr1.ids import derive_seed, normalize_text
from worldr1.prompts.camera import Primitive, parse_camera

Moves = tuple[Primitive, ...]


@dataclass(frozen=True)
class CameraMix:
    moves: tuple[Moves, ...]
    weights: tuple[float, ...]

    @classmethod
    def from_config(cls, mix: Mapping[str, float]) -> CameraMix:
        """`{"push in, then pan left": 19, ...}`: camera sentences without "Camera" and the full stop."""
        moves = []
        for sentence in mix:
            parsed = parse_camera(f"Camera {sentence}.")
            if not parsed.ok:
                raise ValueError(f"camera mix entry {sentence!r}: {parsed.reason}")
            moves.append(parsed.primitives)
        return cls(tuple(moves), tuple(float(w) for w in mix.values()))

    def draw(self, seed: int, text: str) -> Moves:
        """The moves of the plain prompt `text` under the run's `seed`."""
        rng = random.Random(derive_seed(seed, "enhance", "camera", normalize_text(text)))
        return rng.choices(self.moves, weights=self.weights, k=1)[0]

    def shares(self) -> dict[Moves, float]:
        total = sum(self.weights)
        return {m: w / total for m, w in zip(self.moves, self.weights)}
