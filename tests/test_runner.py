import pytest

from nbutils.cli import main
from nbutils.errors import NbUtilsError
from nbutils.runner import discover, load_profile, parse_overrides, plan, select


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
    assert main(["run", "--only", "42"]) == 2
    assert "no notebook numbered 42" in capsys.readouterr().err
    assert main(["run", "--profile", "nope"]) == 2


def test_list_elements_are_checked_against_the_declared_default(tmp_path):
    nbs = discover()
    with pytest.raises(NbUtilsError, match=r"calibrators=\[1\] holds \[1\].*list of str"):
        plan(select(nbs, "20"), nbs, load_profile("smoke"), {"calibrators": [1]}, tmp_path)
    assert plan(select(nbs, "60"), nbs, load_profile("smoke"), {"batch_sizes": [2, 4]}, tmp_path)["60"]["batch_sizes"] == [2, 4]
    with pytest.raises(NbUtilsError, match="list of int"):
        plan(select(nbs, "60"), nbs, load_profile("smoke"), {"batch_sizes": ["8"]}, tmp_path)
