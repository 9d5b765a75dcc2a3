import pytest

from nbutils.core.errors import NbUtilsError
from nbutils.suite.cli import main
from nbutils.suite.runner import discover, load_profile, parse_overrides, plan, select


def test_parse_overrides_reads_yaml_literals():
    assert parse_overrides(["a=1", "b=x", "c=[1, 8]", "d=true", "e=1e-4"]) == {
        "a": 1, "b": "x", "c": [1, 8], "d": True, "e": 1e-4}
    with pytest.raises(NbUtilsError, match="name=value"):
        parse_overrides(["novalue"])


def test_unknown_profile():
    with pytest.raises(NbUtilsError, match="(?s)unknown profile 'nope'.*default"):
        load_profile("nope")


def test_unknown_notebook_number():
    with pytest.raises(NbUtilsError, match="no notebook numbered 99"):
        select(discover(), "10,99")


def test_unknown_parameter_is_an_error(tmp_path):
    nbs = discover()
    with pytest.raises(NbUtilsError, match="no selected notebook declares.*'trian_samples'"):
        plan(select(nbs, "10"), nbs, load_profile("smoke"), {"trian_samples": 5}, tmp_path)


def test_parameter_declared_only_by_unselected_notebook(tmp_path):
    nbs = discover()
    with pytest.raises(NbUtilsError, match="no selected notebook declares"):
        plan(select(nbs, "00"), nbs, load_profile("smoke"), {"train_samples": 5}, tmp_path)


def test_wrong_type_is_an_error(tmp_path):
    nbs = discover()
    with pytest.raises(NbUtilsError, match="train_samples='many'.*int"):
        plan(select(nbs, "10"), nbs, load_profile("smoke"), {"train_samples": "many"}, tmp_path)


def test_shared_parameter_goes_only_to_declaring_notebooks(tmp_path):
    nbs = discover()
    params = plan(select(nbs, "00,10"), nbs, load_profile("smoke"), {"train_samples": 7}, tmp_path)
    assert params["10"]["train_samples"] == 7 and "train_samples" not in params["00"]
    assert params["00"]["smoke"] is True


def test_relative_data_path_is_made_absolute(tmp_path):
    (tmp_path / "mydata").mkdir()
    nbs = discover()
    params = plan(select(nbs, "10"), nbs, load_profile("smoke"), {"data": "./mydata"}, tmp_path)
    assert params["10"]["data"] == str((tmp_path / "mydata").resolve())


def test_cli_bad_input_exits_2(capsys):
    assert main(["run", "--only", "41"]) == 2
    assert "no notebook numbered 41" in capsys.readouterr().err
    assert main(["run", "--profile", "nope"]) == 2


def test_list_elements_are_checked_against_the_declared_default(tmp_path):
    nbs = discover()
    with pytest.raises(NbUtilsError, match=r"calibrators=\[1\] holds \[1\].*list of str"):
        plan(select(nbs, "20"), nbs, load_profile("smoke"), {"calibrators": [1]}, tmp_path)
    assert plan(select(nbs, "60"), nbs, load_profile("smoke"), {"batch_sizes": [2, 4]}, tmp_path)["60"]["batch_sizes"] == [2, 4]
    with pytest.raises(NbUtilsError, match="list of int"):
        plan(select(nbs, "60"), nbs, load_profile("smoke"), {"batch_sizes": ["8"]}, tmp_path)


def test_resume_checks_its_folder_and_profile(tmp_path):
    from nbutils.core.paths import runs_dir, write_json
    from nbutils.suite.runner import _resume

    nbs = select(discover(), "40")
    with pytest.raises(NbUtilsError, match="--resume needs --run-id"):
        _resume(None, "smoke", nbs)
    with pytest.raises(NbUtilsError, match="no run folder"):
        _resume("nothing-here", "smoke", nbs)
    folder = runs_dir() / "r1"
    folder.mkdir(parents=True)
    write_json(folder / "run.json", {"profile": "sst2"})
    with pytest.raises(NbUtilsError, match="made with profile 'sst2'"):
        _resume("r1", "smoke", nbs)
    write_json(folder / "outcomes.json", [{"name": "10_baseline", "seconds": 5, "ok": True, "error": ""},
                                          {"name": "40_export", "seconds": 1, "ok": False, "error": "x"}])
    run_dir, previous = _resume("r1", "sst2", nbs)
    assert run_dir == folder.resolve() and [o.name for o in previous] == ["10_baseline"]  # 40 runs again
    assert main(["run", "--profile", "smoke", "--only", "40", "--resume"]) == 2


@pytest.mark.parametrize("name", ["default", "smoke", "sst2", "gpu", "squad"])
def test_every_profile_plans_against_the_notebooks(name, tmp_path):
    """Each shipped profile's parameters exist in the notebooks with the right types (checked before any run)."""
    nbs = discover()
    params = plan(nbs, nbs, load_profile(name), {}, tmp_path)
    assert params["10"]["smoke"] is (name == "smoke")
    if name == "gpu":
        assert {nb: p["device"] for nb, p in params.items() if "device" in p} and all(
            p["device"] == "cuda" for p in params.values() if "device" in p)
    if name == "squad":
        assert params["10"]["data"].endswith("dev-v1.1.json") and params["10"]["max_length"] == 256
