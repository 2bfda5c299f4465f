"""The documents match the code: the README's Layout names every module, links between pages resolve, and the
generated settings page is current (tests/test_settings.py)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "trackpose"


def test_readme_layout_names_every_module():
    layout = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    words = set(re.findall(r"[A-Za-z_]+", layout))
    names = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    names |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(n for n in names if n not in words)
    assert not missing, f"README.md's Layout does not mention: {missing}"


def test_links_between_documents_resolve():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
