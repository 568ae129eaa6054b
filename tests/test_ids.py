"""Derived ids and seeds: stable across runs and machines, different where they should be."""

from __future__ import annotations

from worldr1.ids import derive_seed, normalize_text, prompt_id, sample_id


def test_prompt_id_is_stable_and_ignores_whitespace_and_unicode_form() -> None:
    text = "Camera push in. A café."
    assert prompt_id(text) == prompt_id("  Camera  push in.\tA cafe\u0301. ")
    assert prompt_id(text) != prompt_id("Camera push in. A cafe.")
    # Pinned: changing the recipe would orphan every artifact keyed by prompt_id.
    assert (
        prompt_id("Camera push in. A hall.")
        == "p" + __import__("hashlib").sha256(b"Camera push in. A hall.").hexdigest()[:15]
    )
    assert normalize_text(" a \n b ") == "a b"


def test_sample_id() -> None:
    assert sample_id("r003", "pabc", 7) == "r003-pabc-007"


def test_derive_seed_is_deterministic_and_separates_parts() -> None:
    assert derive_seed(0, "r000", "p1", 0) == derive_seed(0, "r000", "p1", 0)
    seeds = {derive_seed(s, r, i) for s in range(3) for r in ("r000", "r001") for i in range(50)}
    assert len(seeds) == 300
    assert derive_seed(0, "a", "bc") != derive_seed(0, "ab", "c")
    assert 0 <= derive_seed(123, "x") < 2**63
