"""The direction of imports, written down once: a part may import its own layer's and lower
layers' parts, never a higher one's. Commands (``*/commands.py``, ``cli.py``) are the front
door and may import anything; an import only for type checking does not count."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS = (
    {"common", "clock", "presentation"},  # shared pure pieces: they import no part
    {"config"},
    {"db", "ami", "pbxsim"},  # storage, and the wire peers
    {"dispatch", "rollout", "prompts"},  # forwarding, the provinces, prompt audio
    {"accountability", "complaints", "reports", "dialplan"},  # acting, filing, reporting, the dialplan
    {"ivr", "web", "monitor", "retention", "migrations", "service",
     "drill"},  # drivers, pages, jobs, the schema's history, the service, the failover drill
)
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _imports(tree: ast.AST):
    """(line, module) of every absolute import outside ``if TYPE_CHECKING:`` blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            skip |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def upward_edges() -> list[str]:
    found = []
    for part in RANK:
        for path in sorted((ROOT / part).rglob("*.py")):
            if path.name == "commands.py":
                continue
            for line, module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
                target = module.split(".")[0]
                if target in RANK and RANK[target] > RANK[part]:
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {module} "
                                 f"({part} is below {target})")
    return found


def test_every_part_has_a_layer():
    parts = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests", "bench"}
    assert parts == set(RANK), "a new part needs its place in LAYERS"


def test_every_part_is_installed():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = {p for p in cfg["options.packages.find"]["include"].split() if "*" not in p}
    assert listed == set(RANK), "setup.cfg's packages differ from the parts: pip would leave one out"


def test_no_part_imports_one_above_it():
    assert upward_edges() == []


def test_the_check_finds_an_upward_import(tmp_path):
    tree = ast.parse("from ivr.backend import Backend\nif TYPE_CHECKING:\n    from web import app\n")
    assert [m for _, m in _imports(tree)] == ["ivr.backend"]
