import pytest

from nbutils.core.errors import NbUtilsError
from nbutils.training.models import display_name, is_untrained, load_model, load_tokenizer, save_checkpoint


def test_default_model_is_packaged_minilm():
    m = load_model("default", num_labels=2)
    assert m.config.num_hidden_layers == 6 and m.config.hidden_size == 384
    assert display_name("default") == "all-MiniLM-L6-v2"


def test_random_architecture_is_flagged():
    m = load_model("random:bert-tiny")
    assert m.config.hidden_size == 128
    assert is_untrained("random:bert-base") and "untrained" in display_name("random:bert-base")
    with pytest.raises(NbUtilsError, match="unknown random architecture"):
        load_model("random:gpt-9")


def test_missing_path_and_folder_without_config(tmp_path):
    with pytest.raises(NbUtilsError, match="does not exist"):
        load_model("./no/such/model")
    with pytest.raises(NbUtilsError, match="no config.json"):
        load_model(str(tmp_path))


def test_unreachable_hub_id_gets_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NbUtilsError, match="(?s)could not be loaded.*local folder"):
        load_tokenizer("no-such-org/no-such-model-xyz")


def test_local_checkpoint_roundtrip(tmp_path):
    m = load_model("random:bert-tiny", num_labels=3)
    tok = load_tokenizer("random:bert-tiny")
    path = save_checkpoint(m, tok, tmp_path / "ckpt", {"k": 1})
    assert (path / "nbutils.json").is_file() and not list(tmp_path.glob(".ckpt*"))
    again = load_model(str(path), num_labels=3)
    assert again.config.num_labels == 3
