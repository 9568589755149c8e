"""The README's file map matches the tree: every module is named (or its folder is), and every path it
names exists."""

import glob
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _file_map() -> str:
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("```", text.index("## Files"))
    return text[start + 3 : text.index("```", start + 3)]


def test_every_module_is_in_the_file_map():
    block = _file_map()
    missing = []
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "ytlabel", "**", "*.py"), recursive=True)):
        relative = os.path.relpath(path, ROOT)
        if os.path.basename(path) in ("__init__.py", "__main__.py"):
            continue
        if relative not in block and os.path.dirname(relative) + "/" not in block:
            missing.append(relative)
    assert missing == []


def test_every_path_in_the_file_map_exists():
    named = re.findall(r"^(\S+)\s", _file_map(), flags=re.MULTILINE)
    assert len(named) > 40
    gone = [name for name in named
            if not glob.glob(os.path.join(ROOT, name.replace("<stage>", "*")))]
    assert gone == []
