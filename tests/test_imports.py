"""Import strings (``package.module:function``) for ``--dataset`` and ``--model``."""
import sys

import pytest

from deapnn.imports import ImportStringError, is_import_string, resolve


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module ``usermods_<test>`` in a fresh current directory, as a researcher writes it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"usermods_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        "import torch\n"
        "def build(input_shape, num_classes):\n"
        "    return torch.nn.Linear(input_shape[-1], num_classes)\n"
        "class Net(torch.nn.Module):\n"
        "    pass\n"
        "value = 3\n")
    (tmp_path / "broken_on_import.py").write_text("raise RuntimeError('no GPU here')\n")
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    yield name
    for mod in (name, "broken_on_import", "exits_on_import"):
        sys.modules.pop(mod, None)


def test_a_function_and_a_class_in_the_current_directory_resolve(user_module):
    build = resolve(f"{user_module}:build", "--model")
    assert build((1, 4), 3).out_features == 3
    assert resolve(f"{user_module}:Net", "--model").__name__ == "Net"


@pytest.mark.parametrize("text,fragment", [
    ("os:system", "a built-in"),
    ("nosuch_module_xyz:thing", "no module named 'nosuch_module_xyz'"),
    ("os.path:nosuch", "has no attribute 'nosuch'"),
    ("no_colon_here", "not an import string"),
    ("a:b:c", "not an import string"),
    ("../evil:x", "not an import string"),
    ("broken_on_import:x", "importing broken_on_import failed: RuntimeError: no GPU here"),
    ("exits_on_import:x", "importing exits_on_import failed: SystemExit"),
])
def test_what_is_no_factory_is_one_line_naming_the_flag(user_module, text, fragment):
    with pytest.raises(ImportStringError) as info:
        resolve(text, "--model")
    message = str(info.value)
    assert message.startswith("--model: ") and fragment in message and "\n" not in message


def test_a_value_that_is_no_callable_is_refused(user_module):
    with pytest.raises(ImportStringError, match="int, not a Python function"):
        resolve(f"{user_module}:value", "--dataset")


def test_the_form_is_recognised_without_importing():
    assert is_import_string("pkg.mod:make_data") and is_import_string("m:f.g")
    assert not is_import_string("digits") and not is_import_string("data/x.npz")
    assert not is_import_string("C:\\data\\x.npz") and not is_import_string(3)
