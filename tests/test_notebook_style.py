"""Stage notebooks are thin: outside the parameters cell a notebook only calls the library
(desivoids.<stage> and its figures module, desivoids.display) and shows what it returns. No
function, lambda, loop or comprehension (logic belongs in the library, where it is tested) and no
numeric literal (a threshold or size written in a notebook drifts from the library's constant)."""
from __future__ import annotations

import ast
import re

import pytest

from desivoids import paths

#: notebooks still to be made thin (remove a notebook once its logic has moved to the library)
NOT_YET_THIN: set[str] = set()  # every stage notebook is thin (08_density the last)

NOTEBOOKS = sorted(p.stem for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.py"))

#: constructs a thin notebook does not contain, with the reason given in the failure
FORBIDDEN = {
    ast.FunctionDef: "a function definition", ast.AsyncFunctionDef: "a function definition",
    ast.ClassDef: "a class definition", ast.Lambda: "a lambda", ast.For: "a for loop",
    ast.AsyncFor: "a for loop", ast.While: "a while loop", ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension", ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
}

CELL = re.compile(r"^# %%(.*)$", re.M)


def code_outside_parameters(source: str) -> list[tuple[int, str]]:
    """(first line, code) of every code cell of a py:percent notebook but its parameters cell."""
    marks = list(CELL.finditer(source))
    cells = []
    for k, m in enumerate(marks):
        header = m.group(1)
        if "[markdown]" in header or "parameters" in header:
            continue
        end = marks[k + 1].start() if k + 1 < len(marks) else len(source)
        cells.append((source.count("\n", 0, m.start()) + 1, source[m.end():end]))
    return cells


def problems(source: str) -> list[str]:
    """Every forbidden construct and numeric literal outside the parameters cell, by line."""
    out = []
    for first, code in code_outside_parameters(source):
        for node in ast.walk(ast.parse(code)):
            line = first + getattr(node, "lineno", 1) - 1  # the cell starts on its "# %%" line
            if type(node) in FORBIDDEN:
                out.append(f"line {line}: {FORBIDDEN[type(node)]}")
            elif (isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex))
                  and not isinstance(node.value, bool)):
                out.append(f"line {line}: the numeric literal {node.value!r}")
    return out


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_is_thin(name):
    if name in NOT_YET_THIN:
        pytest.xfail(f"{name} is listed in NOT_YET_THIN")
    found = problems((paths.NOTEBOOKS / f"{name}.py").read_text())
    assert not found, f"notebooks/{name}.py holds logic outside its parameters cell:\n" + \
        "\n".join(found) + "\nmove it to the library (desivoids.<stage>.figures) and call it"


def test_not_yet_thin_names_real_notebooks():
    assert NOT_YET_THIN <= set(NOTEBOOKS)


def test_the_check_finds_each_kind_of_logic_and_spares_the_parameters_cell():
    source = "\n".join([
        '# %% tags=["parameters"]', "n: int = 3  # allowed here", "",
        "# %% [markdown]", "# 12 words in markdown are fine", "",
        "# %%", "def f(x):", "    return x", "g = lambda t: t", "for k in range(2):", "    pass",
        "while False:", "    pass", "xs = [a for a in b]", "ax.axvline(-11)", "flag = True", "",
    ])
    found = problems(source)
    assert any("function definition" in p for p in found)
    assert any("lambda" in p for p in found) and any("for loop" in p for p in found)
    assert any("while loop" in p for p in found) and any("list comprehension" in p for p in found)
    assert any("numeric literal 11" in p for p in found)
    assert any("numeric literal 2" in p for p in found)
    assert not any("literal 3" in p for p in found)  # the parameters cell is exempt
    assert not any("True" in p for p in found)        # booleans are not numbers here
    assert found[0].startswith("line 8:")             # lines of the .py file
