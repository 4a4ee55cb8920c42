import pytest

from interp.config import RunConfig, parse_value, recipe
from interp.errors import InterpError
from interp.training.loop import make_config


def test_run_config_round_trips_through_json():
    import json

    cfg = make_config("tutorial", overrides={"pooling": "avg", "channels": "8,16", "train.weight_decay": "0"})
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.model_config["channels"] == [8, 16]
    assert again.train.weight_decay == 0.0


def test_bare_keys_resolve_to_model_then_train_then_data():
    cfg = make_config("tutorial", overrides={"kernel_size": "3", "label_smoothing": "0.1", "n_train": "100"})
    assert cfg.model_config["kernel_size"] == 3
    assert cfg.train.label_smoothing == 0.1
    assert cfg.data.n_train == 100


def test_unknown_set_key_lists_valid_keys():
    with pytest.raises(InterpError, match=r"unknown --set key 'poolng'; did you mean 'pooling'"):
        make_config("tutorial", overrides={"poolng": "avg"})


def test_wrong_value_type_is_a_clear_error():
    with pytest.raises(InterpError, match=r"--set kernel_size=big: expected int"):
        make_config("tutorial", overrides={"kernel_size": "big"})
    with pytest.raises(InterpError, match="expected bool"):
        parse_value(bool, "maybe", "batch_norm")


def test_bad_choice_values_fail_when_building():
    with pytest.raises(InterpError, match="pooling must be one of"):
        make_config("tutorial", overrides={"pooling": "median"})


@pytest.mark.parametrize("key,value", [("epochs", 0), ("lr", -1.0), ("batch_size", 0)])
def test_non_positive_training_numbers_are_rejected(key, value):
    with pytest.raises(InterpError, match=f"{key.replace('_', '-')} must be > 0"):
        make_config("tutorial", **{key: value})


def test_tutorial_recipe_is_the_pytorch_tutorial():
    r = recipe("tutorial")
    assert (r.batch_size, r.lr, r.optimizer, r.momentum, r.epochs, r.augment) == (4, 0.001, "sgd", 0.9, 2, False)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(InterpError, match="unknown keys"):
        RunConfig.from_dict({"model": "tutorial", "family": "cnn", "task": "image-classification",
                             "model_config": {}, "bogus": 1})
    with pytest.raises(InterpError, match=r"config.train: unknown keys \['epoch'\]"):
        RunConfig.from_dict({"model": "tutorial", "family": "cnn", "task": "image-classification",
                             "model_config": {}, "train": {"epoch": 2}})


def test_quick_recipe_is_the_fast_one_with_the_tutorials_budget():
    from dataclasses import asdict

    fast, quick = asdict(make_config("tutorial").train), asdict(make_config("tutorial", recipe="quick").train)
    differing = {key: (fast[key], quick[key]) for key in fast if fast[key] != quick[key]}
    # exactly the tutorial's budget at our speed: 2 epochs, large batches, one evaluation
    assert differing == {
        "recipe": ("fast", "quick"),
        "epochs": (6, 2),
        "batch_size": (64, 128),
        "lr": (3e-3, 4e-3),
        "augment": (True, False),
        "channels_last": (False, True),
        "eval_every": (1, 0),
    }
    # and everything else is the fast recipe's optimiser, schedule and regularisation
    shared = {key: quick[key] for key in ("optimizer", "momentum", "weight_decay", "schedule",
                                          "label_smoothing", "precision", "grad_clip", "eval_flip")}
    assert shared == {"optimizer": "adamw", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "onecycle",
                      "label_smoothing": 0.0, "precision": "auto", "grad_clip": 0.0, "eval_flip": False}
