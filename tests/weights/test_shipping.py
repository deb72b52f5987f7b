"""epic_zoo.weights.shipping: what a wheel's registry keeps and what it names as left out."""

from __future__ import annotations

import ast
from pathlib import Path

from epic_zoo.weights import registry
from epic_zoo.weights.shipping import OMITTED_KEY, is_tagged, wheel_registry

REPO = Path(__file__).resolve().parents[2]


def test_tagged_names():
    assert is_tagged("epic.flatvel-a.lite2k_30k")
    assert not is_tagged("epic.flatvel-a") and not is_tagged("mean-map")


def test_wheel_registry_keeps_defaults_and_names_what_it_leaves_out():
    doc = {
        "format_version": 1,
        "weights": {
            "epic.flatvel-a": {"local": "epic.flatvel-a", "revision": None},
            "epic.flatvel-a.old": {"local": "epic.flatvel-a.old", "revision": None},
            "epic.style-b.hub": {"local": "epic.style-b.hub", "revision": "a" * 40},
            "epic.style-a.remote": {"local": None, "revision": "b" * 40},
        },
    }
    shipped = wheel_registry(doc)
    assert shipped["format_version"] == 1
    assert set(shipped["weights"]) == {"epic.flatvel-a", "epic.style-b.hub", "epic.style-a.remote"}
    # a tagged version pinned on the Hub stays, loaded from there (its folder is not shipped)
    assert shipped["weights"]["epic.style-b.hub"]["local"] is None
    assert list(shipped[OMITTED_KEY]) == ["epic.flatvel-a.old"]
    assert "checkpoints/epic.flatvel-a.old" in shipped[OMITTED_KEY]["epic.flatvel-a.old"]
    assert doc["weights"]["epic.style-b.hub"]["local"] == "epic.style-b.hub"  # input untouched


def test_one_home_for_the_rule():
    """The registry reads the key the module writes; the build hook loads the module by path
    and defines no rule of its own (the standard library only, for an isolated build)."""
    assert registry.OMITTED_KEY is OMITTED_KEY
    setup = (REPO / "setup.py").read_text()
    assert 'epic_zoo" / "weights" / "shipping.py"' in setup
    assert "not_in_this_install" not in setup and "def is_tagged" not in setup
    shipping = ast.parse((REPO / "epic_zoo/weights/shipping.py").read_text())
    imported = {
        (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
        for n in ast.walk(shipping)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    assert imported <= {"__future__", "typing"}, imported
