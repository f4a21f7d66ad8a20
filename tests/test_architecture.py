"""docs/topics/architecture.md lists every module of router/ and of the realtime app, and no other."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def documented() -> set[str]:
    text = (ROOT / "docs" / "topics" / "architecture.md").read_text()
    section = text.split("## The modules", 1)[1].split("\n## ", 1)[0]
    return {name for cell in re.findall(r"^\| (.+?) \|", section, re.M) for name in re.findall(r"`([\w/]+\.py)`", cell)}


def test_the_module_tables_match_the_code():
    realtime = ROOT / "django_site" / "realtime"
    actual = {p.name for p in (ROOT / "router").glob("*.py") if p.name != "__init__.py"}
    actual |= {str(p.relative_to(realtime)) for p in realtime.rglob("*.py")
               if p.name != "__init__.py" or p.parent == realtime}
    named = documented()
    assert sorted(actual - named) == [], "modules the architecture does not list"
    assert sorted(named - actual) == [], "the architecture lists modules that are gone"
