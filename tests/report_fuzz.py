"""Corruptions of a run directory for the report fuzz test (tests/test_cli_hardening.py):
every JSON file's keys dropped / retyped, whole files replaced or truncated, NUL bytes and
over-long fields in CSV files, bytes that are not UTF-8."""
import json
import os

#: values a JSON key is replaced with (each a type the report does not expect somewhere)
RETYPES = [None, "x", [], {}, -1, 1e308, [1, "a"], {"a": {}}]
#: whole-file replacements of a JSON file
JSON_FILES = ["[]", "[1, 2]", "\"text\"", "17", "null", "{}", "{\"a\": NaN}", "{",
              "\x00\x00", "\ufeff{}"]


def _json_files(run_dir):
    for root, _, files in os.walk(run_dir):
        for name in sorted(files):
            if name.endswith(".json"):
                yield os.path.join(root, name)


def _csv_files(run_dir):
    for root, _, files in os.walk(run_dir):
        for name in sorted(files):
            if name.endswith(".csv"):
                yield os.path.join(root, name)


def _key_paths(obj, prefix=(), depth=2):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield prefix + (key,)
            if depth > 1:
                yield from _key_paths(value, prefix + (key,), depth - 1)
    elif isinstance(obj, list) and obj and depth > 1:
        yield prefix + (0,)
        yield from _key_paths(obj[0], prefix + (0,), depth - 1)


def _rewrite(path, edit):
    def apply():
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        data = edit(data)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
    return apply


def _set(keys, value, delete=False):
    def edit(data):
        node = data
        for k in keys[:-1]:
            node = node[k]
        if delete:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return data
    return edit


def _write(path, text, mode="w"):
    def apply():
        with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            fh.write(text)
    return apply


def _edit_text(path, change):
    def apply():
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(change(text))
    return apply


def corruptions(run_dir, retypes=RETYPES):
    """``[(label, apply)]``: each ``apply()`` corrupts one file of a copy of ``run_dir`` (paths
    relative to ``run_dir``, so apply to the copy by passing the copy as ``run_dir``)."""
    out = []
    for path in _json_files(run_dir):
        rel = os.path.relpath(path, run_dir)
        for text in JSON_FILES:
            out.append((f"{rel} := {text!r}", _write(path, text)))
        out.append((f"{rel} truncated", _edit_text(path, lambda t: t[: len(t) // 2])))
        out.append((f"{rel} not UTF-8", _write(path, b"{\"a\": \"\xff\xfe\"}", "wb")))
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        for keys in _key_paths(data):
            label = f"{rel}:{'/'.join(map(str, keys))}"
            out.append((label + " deleted", _rewrite(path, _set(keys, None, delete=True))))
            for value in retypes:
                out.append((f"{label} := {value!r}", _rewrite(path, _set(keys, value))))
    for path in _csv_files(run_dir):
        rel = os.path.relpath(path, run_dir)
        out += [
            (f"{rel} NUL byte",
             _edit_text(path, lambda t: t[:len(t) // 2] + "\x00" + t[len(t) // 2:])),
            (f"{rel} 200 KiB field",
             _edit_text(path, lambda t: t.rstrip("\n") + "x" * 200_000 + "\n")),
            (f"{rel} 200 KiB quoted field",
             _edit_text(path, lambda t: t + '"' + "y" * 200_000 + '"\n')),
            (f"{rel} truncated", _edit_text(path, lambda t: t[: len(t) // 2])),
            (f"{rel} header only", _edit_text(path, lambda t: t.splitlines(True)[0] if t else t)),
            (f"{rel} empty", _write(path, "")),
            (f"{rel} ragged", _edit_text(path, lambda t: t + "1,2,3,4,5,6,7,8,9,10,11,12\n")),
            (f"{rel} not UTF-8", _write(path, b"gen,x\n1,\xff\xfe\n", "wb")),
            (f"{rel} retyped cells", _edit_text(path, lambda t: "\n".join(
                [t.splitlines()[0]] + [",".join(["abc"] * len(line.split(",")))
                                       for line in t.splitlines()[1:]]) + "\n" if t else t)),
            (f"{rel} inf cells", _edit_text(path, lambda t: "\n".join(
                [t.splitlines()[0]] + [",".join(["inf"] * len(line.split(",")))
                                       for line in t.splitlines()[1:]]) + "\n" if t else t)),
        ]
    for root, _, files in os.walk(run_dir):
        for name in files:
            if name.endswith(".pt"):
                rel = os.path.relpath(os.path.join(root, name), run_dir)
                out.append((f"{rel} truncated",
                            _write(os.path.join(root, name), b"PK\x03\x04", "wb")))
    return out
