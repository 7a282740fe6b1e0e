"""Opening the engine for a front end: bad settings exit 2, a failure to open exits 1, each said in
one line; the CLI and the UI report it the same way."""

from __future__ import annotations

import pytest

from shammah_tui.cli import main
from shammah_tui.engine.open import EngineOpenError, engine_settings, open_engine
from shammah_tui.settings import Settings
from shammah_tui.teachers.offline import OfflineTeacher

OFFLINE = Settings(teacher="offline", auto_train=False)


class ClosingTeacher(OfflineTeacher):
    closed = False

    async def close(self) -> None:
        self.closed = True


def garbage_db(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "shammah.db").write_bytes(b"this is not a database" * 100)
    return data


def one_line(text: str) -> bool:
    return bool(text) and "\n" not in text


def test_a_bad_setting_is_a_usage_error_naming_the_key(tmp_path) -> None:
    (tmp_path / "settings.toml").write_text("batch_size = -3\n")
    with pytest.raises(EngineOpenError) as info:
        engine_settings(tmp_path)
    assert info.value.usage and info.value.exit_code == 2
    assert "batch_size" in info.value.message and one_line(info.value.message)


def test_a_data_dir_that_is_a_file_is_a_usage_error(tmp_path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(EngineOpenError) as info:
        engine_settings(path)
    assert info.value.exit_code == 2 and "not a directory" in info.value.message


async def test_settings_read_by_open_engine_fail_the_same_way(tmp_path) -> None:
    (tmp_path / "settings.toml").write_text("spot_check_rate = 'often'\n")
    with pytest.raises(EngineOpenError) as info:
        await open_engine(tmp_path, teacher=OfflineTeacher())
    assert info.value.exit_code == 2 and "spot_check_rate" in info.value.message


async def test_a_database_that_cannot_be_used_is_a_runtime_failure_and_the_teacher_is_closed(tmp_path) -> None:
    teacher = ClosingTeacher()
    with pytest.raises(EngineOpenError) as info:
        await open_engine(garbage_db(tmp_path), OFFLINE, teacher)
    assert not info.value.usage and info.value.exit_code == 1
    assert "cannot" in info.value.message and one_line(info.value.message)
    assert teacher.closed


async def test_a_data_dir_that_cannot_be_made_is_a_runtime_failure(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(EngineOpenError) as info:
        await open_engine(tmp_path / "file" / "data", OFFLINE, OfflineTeacher())
    assert info.value.exit_code == 1
    assert info.value.message.startswith(f"cannot use data dir {tmp_path / 'file' / 'data'}: ")


async def test_an_engine_that_opens_is_the_settings_own(tmp_path) -> None:
    engine = await open_engine(tmp_path / "data", overrides={"teacher": "offline"}, use_models=False)
    try:
        assert engine.teacher.kind == "offline" and engine.data_dir == tmp_path / "data"
    finally:
        await engine.close()


def test_the_cli_exits_1_with_one_line_when_the_engine_cannot_open(tmp_path, capsys) -> None:
    assert main(["stats", "--data-dir", str(garbage_db(tmp_path)), "--teacher", "offline"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("shammah-tui: cannot") and err.count("\n") == 1


def test_the_cli_exits_2_with_one_line_for_bad_settings(tmp_path, capsys) -> None:
    (tmp_path / "settings.toml").write_text("batch_size = -3\n")
    assert main(["stats", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shammah-tui: ") and "batch_size" in err and err.count("\n") == 1


async def test_the_ui_exits_1_with_the_same_line(tmp_path) -> None:
    from shammah_tui.ui import build_app

    data = garbage_db(tmp_path)
    with pytest.raises(EngineOpenError) as info:
        await open_engine(data, OFFLINE, OfflineTeacher())
    app = build_app(data, OFFLINE, OfflineTeacher(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(50):
            if app.return_code is not None:
                break
            await pilot.pause(0.1)
    assert app.return_code == 1
    assert app.exit_reason == info.value.message


def test_the_reason_is_one_line_whatever_it_was_given() -> None:
    err = EngineOpenError("cannot open database x.db:\n  file is not a database\n")
    assert err.message == str(err) == "cannot open database x.db: file is not a database"
    assert err.exit_code == 1 and EngineOpenError("bad value", usage=True).exit_code == 2


async def test_the_ui_exits_with_the_errors_own_code() -> None:
    from shammah_tui.ui.app import ShammahApp

    async def refused():
        raise EngineOpenError("data dir /x is not a directory", usage=True)

    app = ShammahApp(open_engine=refused, load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(50):
            if app.return_code is not None:
                break
            await pilot.pause(0.1)
    assert app.return_code == 2 and app.exit_reason == "data dir /x is not a directory"
