"""The typed checks of a command's documented keys (utils/key_checks.py) and their use by eval / predict /
export: a bad value is one ``ConfigError`` naming the key, what it must be and an example, before any
model is loaded or any file written."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dbd_lightning.utils import key_checks as kc
from dbd_lightning.utils.config import config_dir
from dbd_lightning.utils.errors import ConfigError

CHECKS = {
    "a.flag": kc.flag(),
    "n": kc.whole(0, example=2),
    "x": kc.number(above=0, example=0.3),
    "alpha": kc.number(0, 1, example=0.5),
    "iso": kc.numbers(above=0, below=1, example="[0.5]"),
    "mode": kc.choice(("probability", "logits")),
    "formats": kc.choices(("onnx", "torchscript")),
    "size": kc.image_size(),
    "edges": kc.existing("folder"),
}
GOOD = {"a": {"flag": True}, "n": 0, "x": 1e-4, "alpha": 1, "iso": [0.5, 0.9], "mode": "logits",
        "formats": ["onnx"], "size": [64, 96], "edges": None}


def _check(**changes):
    cfg = OmegaConf.create(GOOD)
    for key, value in changes.items():
        OmegaConf.update(cfg, key.replace("__", "."), value)
    kc.check_keys(cfg, CHECKS, fix="Nothing was written.")


def test_good_values_pass_and_an_absent_key_is_skipped(tmp_path):
    _check()
    _check(size=None, iso=[])
    _check(formats="torchscript", size=320, edges=str(tmp_path))  # one word = a list of it; square size
    _check(edges="")  # empty = unset, like null
    kc.check_keys(OmegaConf.create({"n": 1}), CHECKS)  # the other keys are absent: not this check's business
    kc.check_keys({"a": {"flag": False}}, CHECKS)  # a plain mapping too


@pytest.mark.parametrize("key,value,words", [
    ("a__flag", "maybe", "a.flag='maybe' is not valid: it must be true or false (e.g. a.flag=true)"),
    ("n", "abc", "n='abc' is not valid: it must be a whole number >= 0 (e.g. n=2)"),
    ("n", -7, "n=-7 is not valid: it must be a whole number >= 0"),
    ("n", 1.5, "n=1.5 is not valid"),
    ("n", True, "n=True is not valid"),
    ("x", 0, "x=0 is not valid: it must be a number > 0 (e.g. x=0.3)"),
    ("x", float("nan"), "x=nan is not valid"),
    ("alpha", 1.5, "alpha=1.5 is not valid: it must be a number >= 0 and <= 1"),
    ("iso", "abc", "iso='abc' is not valid: it must be a list of numbers > 0 and < 1 (e.g. iso=[0.5])"),
    ("iso", [0.5, 1.0], "iso=[0.5,1.0] is not valid"),
    ("mode", "mask", "mode='mask' is not valid: it must be one of probability, logits (e.g. mode=probability)"),
    ("formats", "abc", "formats='abc' is not valid: it must be a non-empty list of onnx / torchscript"),
    ("formats", [], "formats=[] is not valid"),
    ("size", "abc", "size='abc' is not valid: it must be one positive whole number or [height,width], or null"),
    ("size", [0, 64], "size=[0,64] is not valid"),
    ("size", [1, 2, 3], "size=[1,2,3] is not valid"),
    ("edges", "/nonexistent/dbd_edges", "edges=/nonexistent/dbd_edges: /nonexistent/dbd_edges does not exist; "
                                       "give the path of an existing folder"),
])
def test_a_bad_value_names_the_key_what_it_must_be_and_an_example(key, value, words):
    with pytest.raises(ConfigError) as info:
        _check(**{key: value})
    assert words in str(info.value)
    assert str(info.value).endswith("Nothing was written.")


def test_a_file_where_a_folder_is_needed(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        _check(edges=str(tmp_path / "f"))


def test_each_command_checks_its_documented_keys_before_loading_anything():
    """The CLIs' check tables name keys their config documents (a renamed key would silently skip its check)."""
    from dbd_lightning import eval as eval_cli
    from dbd_lightning import export, predict

    for name, module in (("eval", eval_cli), ("predict", predict), ("export", export)):
        cfg = OmegaConf.load(f"{config_dir()}/{name}.yaml")
        for key in module.KEY_CHECKS:
            assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", f"{name}: {key} not in {name}.yaml"
        module.check_config(cfg)  # the shipped defaults pass


def test_predict_and_eval_refuse_a_bad_value_when_called_directly(tmp_path):
    """A programmatic call (no CLI precheck) gets the same error, before the model or any folder."""
    from dbd_lightning.eval import evaluate
    from dbd_lightning.predict import predict

    from .helpers import compose_cfg

    cfg = compose_cfg(tmp_path / "h", ["ckpt=zoo:nothing", f"input={tmp_path}", f"output={tmp_path}/out",
                                       "edges=/nonexistent/dbd_edges"], config_name="predict")
    with pytest.raises(ConfigError, match="edges=/nonexistent/dbd_edges: "):
        predict(cfg)
    cfg = compose_cfg(tmp_path / "h2", ["ckpt=zoo:nothing", "report.beta2=-1"], config_name="eval")
    with pytest.raises(ConfigError, match="report.beta2=-1 is not valid"):
        evaluate(cfg)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- train
TRAIN_BASE = ["model=dffnet_small", "logger=none"]


@pytest.mark.parametrize("override,words", [
    ("test=maybe", "test='maybe' is not valid: it must be true or false (e.g. test=true)"),
    ("compile.enabled=maybe", "compile.enabled='maybe' is not valid: it must be true or false"),
    ("compile.mode=fast", "compile.mode='fast' is not valid: it must be one of default, reduce-overhead"),
    ("compile.dynamic=abc", "compile.dynamic='abc' is not valid: it must be true or false, or null"),
    ("preflight.min_free_mb=abc", "preflight.min_free_mb='abc' is not valid: it must be a number >= 0, or null"),
    ("real_report.enabled=maybe", "real_report.enabled='maybe' is not valid"),
    ("test_ckpt=/nonexistent/dbd.ckpt", "test_ckpt=/nonexistent/dbd.ckpt: /nonexistent/dbd.ckpt does not exist; give "
                                        "best, last, current or the path of an existing file"),
    # the data config's arguments, checked by the classes they build (ARG_CHECKS), named by the data.* key
    ("data.preset=foggy", "data.preset='foggy' is not valid: it must be one of photographic, random, shallow, wide"),
    ("data.val_length=-7", "data.val_length=-7 is not valid: it must be a whole number >= 0"),
    ("data.train_length=abc", "data.train_length='abc' is not valid"),
    ("data.render_size=abc", "data.render_size='abc' is not valid: it must be one positive whole number or "
                             "[height,width]"),
    ("data.cache=maybe", "data.cache='maybe' is not valid: it must be true or false"),
    # a literal argument (no data.* key to name): its own path
    ("data.datamodule.val.synthetic.length=-3", "data.datamodule.val.synthetic.length=-3 is not valid"),
    # a callback group's keys (a tuple: the group, then the bad value)
    (("callbacks=ema", "callbacks.weight_ema.decay=1.5"),
     "callbacks.weight_ema.decay=1.5 is not valid: it must be a number >= 0 and < 1"),
    (("callbacks=ema", "callbacks.weight_ema.decay=-0.1"), "callbacks.weight_ema.decay=-0.1 is not valid"),
    (("callbacks=ema", "callbacks.weight_ema.decay=fast"), "callbacks.weight_ema.decay='fast' is not valid"),
    (("callbacks=ema", "callbacks.weight_ema.update_every_n_steps=0"),
     "callbacks.weight_ema.update_every_n_steps=0 is not valid"),
])
def test_train_refuses_a_bad_value_before_the_run(tmp_path, override, words):
    from dbd_lightning.utils.validate import validate_train_config

    from .helpers import compose_cfg

    cfg = compose_cfg(tmp_path, [*TRAIN_BASE, *([override] if isinstance(override, str) else override)])
    with pytest.raises(ConfigError) as info:
        validate_train_config(cfg)
    assert words in str(info.value), str(info.value)


def test_train_accepts_the_documented_values(tmp_path):
    from dbd_lightning.utils.validate import validate_train_config

    from .helpers import compose_cfg

    (tmp_path / "w.ckpt").write_bytes(b"x")
    for overrides in (["compile.mode=max-autotune", "compile.dynamic=true", "preflight.min_free_mb=0"],
                      ["test_ckpt=current"], ["test_ckpt=null"], [f"test_ckpt={tmp_path / 'w.ckpt'}"],
                      ["data=photographic", "data.preset=photographic", "data.val_length=0"],
                      ["+data.render_overrides.noise_prob=0.0", "data.render_size=64", "data.cache=true"]):
        validate_train_config(compose_cfg(tmp_path / "h", [*TRAIN_BASE, *overrides]))


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml")))
def test_every_experiment_passes_the_key_checks(tmp_path, experiment):
    """The typed checks refuse no shipped recipe (a false refusal would stop a real training)."""
    from dbd_lightning.utils import validate

    from .helpers import compose_cfg

    cfg = compose_cfg(tmp_path, [f"experiment={experiment}"])
    kc.check_keys(cfg, validate.TRAIN_KEY_CHECKS)
    validate.check_data_args(cfg)
