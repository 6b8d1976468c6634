"""The output rule (ternkit/outputs.py): ternkit replaces only what it wrote; refusals are one line and
leave everything as it was."""

import os

import pytest
from cli_helpers import one_line_error, snapshot, unwritable

from ternkit import outputs
from ternkit.cli import main
from ternkit.outputs import MANIFEST, OutputError


@pytest.mark.parametrize("where", [".", "~", "/", ".."])
def test_force_never_replaces_cwd_home_or_root(where, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    cwd = home / "work"
    cwd.mkdir(parents=True)
    (cwd / "thesis.tex").write_text("years of work")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    before = snapshot(tmp_path)
    assert main(["generate", "tiny", "-o", os.path.expanduser(where), "--force"]) == 2
    one_line_error(capsys, "refusing")
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_force_replaces_only_a_folder_ternkit_wrote(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "tiny", "-o", str(out)]) == 0
    assert MANIFEST in os.listdir(out)
    (out / "notes.txt").write_text("mine")          # a user's file appears in ternkit's folder
    before = snapshot(tmp_path)
    assert main(["generate", "tiny", "-o", str(out), "--force"]) == 2
    one_line_error(capsys, "notes.txt", "did not write")
    assert snapshot(tmp_path) == before
    (out / "notes.txt").unlink()
    assert main(["generate", "tiny", "-o", str(out), "--force"]) == 0


def test_a_folder_without_manifest_is_never_replaced(tmp_path, capsys):
    out = tmp_path / "old-output"
    out.mkdir()
    (out / "Makefile").write_text("a user's Makefile with a name ternkit also uses")
    assert main(["generate", "tiny", "-o", str(out), "--force"]) == 2
    one_line_error(capsys, "Makefile")
    assert (out / "Makefile").read_text().startswith("a user's")


def test_single_files_replace_only_ternkit_files(tmp_path):
    path = tmp_path / "report.json"
    outputs.write_file(path, "{}")
    outputs.write_file(path, "{\"again\": 1}")        # ternkit's own file: replaced
    assert path.read_text() == "{\"again\": 1}"
    mine = tmp_path / "mine.json"
    mine.write_text("user data")
    with pytest.raises(OutputError, match="ternkit did not write it"):
        outputs.check_file(mine)
    with pytest.raises(OutputError, match="is a folder"):
        outputs.check_file(tmp_path)
    assert mine.read_text() == "user data"
    assert outputs.manifest_names(tmp_path) == {"report.json"}


def test_unwritable_output_is_refused_before_the_work(tmp_path, capsys):
    ro = unwritable(tmp_path)
    with pytest.raises(OutputError, match="cannot write in"):
        outputs.check_file(ro / "sub" / "x.json")
    with pytest.raises(OutputError, match="cannot write in"):
        outputs.check_folder(ro / "gen", force=False)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        outputs.check_file(f / "x.json")


# every command that writes: a user's file at its output path is refused before any work, untouched
USER_FILE_CASES = {
    "simulate --out": (["simulate", "tiny", "--out", "{d}/mine.json"], "mine.json"),
    "simulate --plot": (["simulate", "tiny", "--plot", "{d}/mine.png"], "mine.png"),
    "sweep --out": (["sweep", "tiny", "--out", "{d}/mine.csv"], "mine.csv"),
    "bench --plot": (["bench", "tiny", "--plot", "{d}/mine.png"], "mine.png"),
    "tune -o": (["tune", "tiny", "-o", "{d}"], "tuning.yaml"),
    "run --out": (["run", "--out", "{d}"], "report.md"),
    "train checkpoint.dir": (["train", "{d}/train.yaml"], "ckpt/last.safetensors"),
}


@pytest.mark.parametrize("case", sorted(USER_FILE_CASES))
def test_every_writer_refuses_to_replace_a_users_file(case, tmp_path, capsys):
    argv, name = USER_FILE_CASES[case]
    mine = tmp_path / name
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("the user's own file")
    (tmp_path / "train.yaml").write_text(f"model: tiny\ntrain: {{steps: 2, batch: 1, seq_len: 8}}\n"
                                         f"checkpoint: {{dir: {tmp_path / 'ckpt'}}}\n")
    before = snapshot(tmp_path)
    assert main([a.format(d=tmp_path) for a in argv]) == 2
    one_line_error(capsys, name.rsplit("/", 1)[-1], "ternkit did not write it")
    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*")]       # no manifest, probe or temporary file left
