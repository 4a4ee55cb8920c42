"""Users' own classifiers (issue #16): `interp import torchvision:ARCH` writes a run folder that
every command takes; weights are read without unpickling; mismatches are named."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

torchvision = pytest.importorskip("torchvision")

from interp.errors import InterpError  # noqa: E402
from interp.hooks import hook_count  # noqa: E402
from interp.imports import import_model, read_state_dict  # noqa: E402


def _resnet(num_classes=10, seed=0):
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None, num_classes=num_classes).eval()


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("weights")
    model = _resnet()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "r18.safetensors")
    return model, folder / "r18.safetensors"


@pytest.fixture()
def image_folder(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for c in ("cat", "golden_retriever"):
        (tmp_path / "imgs" / "val" / c).mkdir(parents=True)
        for i in range(3):
            pixels = torch.randint(0, 256, (50 + 10 * i, 70, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / "imgs" / "val" / c / f"{i}.png")
    return tmp_path / "imgs"


def test_import_keeps_the_weights_and_the_logits(resnet_weights, tmp_path):
    model, file = resnet_weights
    run = import_model("torchvision:resnet18", "mine", weights=file, root=tmp_path, progress=False)
    assert run.config.model_config == {"arch": "resnet18", "num_classes": 10}  # read from fc.weight
    assert run.classes == [f"class{i}" for i in range(10)]
    assert run.input_shape == (3, 224, 224) and run.config.data.mean == (0.485, 0.456, 0.406)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(run.model(x), model(x), rtol=0, atol=1e-5)
    assert (tmp_path / "mine" / "model.safetensors").is_file()
    assert hook_count(run.model) == 0


def test_layers_are_the_models_own_module_paths(tmp_path):
    run = import_model("torchvision:resnet18", "r", weights="random", num_classes=3, root=tmp_path,
                       progress=False)
    names = [layer.name for layer in run.layers]
    assert {"conv1", "layer1", "layer3.1", "layer3.1.conv2", "fc"} <= set(names)
    assert "layer3.1.bn2" not in names and "relu" not in names
    assert run.layer("layer3.1.conv2").units == 256
    with pytest.raises(InterpError, match="layer3.1.conv2"):  # the error lists the real names
        run.layer("layer3.1.conv3")


def test_in_place_activations_are_switched_off_so_hooks_see_the_conv_output(tmp_path):
    from interp.hooks import capture

    run = import_model("torchvision:vgg11", "v", weights="random", num_classes=2, root=tmp_path, progress=False)
    with torch.no_grad(), capture(run.model, ["features.0"]) as acts:
        run.model(torch.randn(1, 3, 32, 32))
    assert acts["features.0"].min() < 0  # pre-ReLU: an in-place ReLU would have zeroed these


def test_torch_files_are_read_with_weights_only_and_unwrapped(tmp_path):
    model = _resnet(num_classes=4)
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    state = read_state_dict(tmp_path / "ckpt.pt")
    assert set(state) == set(model.state_dict())


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickle_is_refused_with_how_to_convert(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(InterpError, match="never unpickles.*state_dict"):
        read_state_dict(tmp_path / "evil.pt")
    assert "pwned" not in capsys.readouterr().out


def test_weights_of_another_architecture_name_the_first_bad_key(tmp_path):
    from safetensors.torch import save_file

    state = _resnet().state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "bad.safetensors")
    with pytest.raises(InterpError, match=r"layer1.0.conv1.weight has shape \(64, 64, 5, 5\) in the file but "
                                          r"\(64, 64, 3, 3\)"):
        import_model("torchvision:resnet18", "bad", weights=tmp_path / "bad.safetensors", root=tmp_path)
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_unknown_architecture_and_source_suggest_close_matches(tmp_path):
    with pytest.raises(InterpError, match="did you mean 'resnet18'"):
        import_model("torchvision:resnet81", "x", weights="random", root=tmp_path)
    with pytest.raises(InterpError, match="unknown model source 'torchvison'"):
        import_model("torchvison:resnet18", "x", weights="random", root=tmp_path)
    with pytest.raises(InterpError, match="give --weights FILE"):
        import_model("torchvision:resnet18", "x", root=tmp_path)


def test_imagenet_class_names_come_from_torchvisions_metadata_without_a_download(tmp_path):
    run = import_model("torchvision:resnet18", "r", weights="random", root=tmp_path, progress=False)
    assert len(run.classes) == 1000 and run.classes[207] == "golden retriever"


def test_an_evaluation_folder_is_matched_to_the_models_classes_by_name(tmp_path, image_folder):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\ngolden retriever\ncat\n")
    run = import_model("torchvision:resnet18", "r", weights="random", num_classes=3, classes=classes,
                       dataset=str(image_folder), root=tmp_path, progress=False)
    run.config.data.options.update(crop=48, resize=56)  # small, for speed
    data = run.load_data(progress=False)
    assert data.test_x.shape == (6, 3, 48, 48) and len(data.train_x) == 0
    assert sorted(data.test_y.tolist()) == [1, 1, 1, 2, 2, 2]  # golden_retriever -> 1, cat -> 2
    assert data.classes == ["dog", "golden retriever", "cat"]


def test_folder_classes_that_match_nothing_and_differ_in_count_are_an_error(tmp_path, image_folder):
    from interp.data.evaluation import match_classes

    assert match_classes(["a", "b"], ["x", "y"]) == [0, 1]  # same count: sorted order (ImageFolder)
    with pytest.raises(InterpError, match="class 'a' is not one of the model's 3 classes"):
        match_classes(["a", "b"], ["x", "y", "z"])


def test_a_run_without_a_dataset_says_how_to_add_one(tmp_path):
    run = import_model("torchvision:resnet18", "r", weights="random", num_classes=2, root=tmp_path,
                       progress=False)
    with pytest.raises(InterpError, match="--dataset FOLDER"):
        run.load_data()


def test_deeplift_is_left_out_of_all_and_refused_by_name_on_a_resnet(tmp_path):
    from interp.analysis.attribution.methods import parse_methods
    from interp.subject import as_subject

    run = import_model("torchvision:resnet18", "r", weights="random", num_classes=2, root=tmp_path,
                       progress=False)
    subject = as_subject(run)
    assert "deeplift" not in parse_methods("all", subject) and "ig" in parse_methods("all", subject)
    with pytest.raises(InterpError, match="calls layer1.0.relu more than once"):
        parse_methods("deeplift", subject)
    assert hook_count(run.model) == 0


def test_reused_modules_are_found():
    from interp.hooks import reused_modules

    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    assert reused_modules(model, torch.zeros(1, 2)) == ["1"]
    assert hook_count(model) == 0


def test_imported_families_are_not_trained(cli):
    code, _, err = cli("train", "torchvision")
    assert code == 2 and "imported, not trained here: interp import torchvision:ARCH" in err


def test_cli_import_then_visualize_examples_and_attribute(cli, tmp_path, image_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("import", "torchvision:resnet18", "--name", "r18", "--weights", "random",
                         "--num-classes", "2", "--size", "48", "--dataset", str(image_folder))
    assert code == 0, err
    assert "r18: torchvision:resnet18, 2 classes, input (3, 48, 48)" in out
    code, _, err = cli("import", "torchvision:resnet18", "--name", "r18", "--weights", "random")
    assert code == 2 and "already exists" in err
    code, out, err = cli("visualize", "--run", "r18", "--layer", "layer2.0.conv1", "--units", "0-1",
                         "--steps", "4", "--no-progress", "--natural", "0")
    assert code == 0, err
    code, out, err = cli("examples", "--run", "r18", "--layer", "layer2", "--units", "0-1", "--no-progress")
    assert code == 0, err
    code, out, err = cli("attribute", "pixels", "--run", "r18", "--index", "0", "--methods", "saliency,gradcam",
                         "--no-progress")
    assert code == 0, err
    from interp.runs import load_run

    assert hook_count(load_run(tmp_path / "models" / "r18").model) == 0


def test_cli_models_pretrained_lists_microscopes_models(cli):
    code, out, _ = cli("models", "--pretrained")
    assert code == 0 and "vgg19: interp import torchvision:vgg19" in out and "conv4_1=features.19" in out
    assert "v1.5" in out  # the ResNet-50 difference is said, not hidden


def test_timm_without_timm_installed_says_how_to_install(tmp_path):
    try:
        import timm  # noqa: F401
        pytest.skip("timm is installed; this checks the message when it is not")
    except ModuleNotFoundError:
        pass
    with pytest.raises(InterpError, match=r"pip install 'interp\[timm\]'"):
        import_model("timm:resnet18", "t", weights="random", root=tmp_path)


def test_timm_model_imports_when_timm_is_installed(tmp_path):
    pytest.importorskip("timm")
    run = import_model("timm:resnet18", "t", weights="random", num_classes=3, root=tmp_path, progress=False)
    assert run.layer("layer3.1.conv2").units == 256


# --------------------------------------------------------------------------- Hugging Face causal LMs


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """A 2-layer GPT-2 with random weights and a character tokenizer, saved as a user would."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    folder = tmp_path_factory.mktemp("gpt2")
    vocab = {c: i for i, c in enumerate(["<|endoftext|>", *"abcdefghijklmnopqrstuvwxyz .,\n"])}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    raw.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    raw.decoder = decoders.Fuse()  # characters back together, as a real BPE decoder does
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|endoftext|>",
                                                     eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    config = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=64, vocab_size=len(vocab), n_positions=64,
                                     bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model


def test_hf_import_logits_through_the_bridge_equal_the_hf_models(gpt2_folder, tmp_path):
    from interp.analysis.language.bridge import to_bridge

    folder, hf = gpt2_folder
    run = import_model(f"hf:{folder}", "g", root=tmp_path, progress=False)
    assert run.config.model_config["n_layer"] == 2 and run.config.model_config["n_head"] == 4
    ids = run.tokenizer("hello world", return_tensors="pt").input_ids
    with torch.no_grad():
        expected = hf(ids).logits
        torch.testing.assert_close(run.model(ids), expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(to_bridge(run)(ids), expected, rtol=0, atol=1e-5)
        to_bridge(run, fold_ln=True)  # folds the copy's weights, never the run's
        torch.testing.assert_close(run.model(ids), expected, rtol=0, atol=1e-5)
    assert hook_count(run.model) == 0


def test_hf_tokens_are_the_tokenizers(gpt2_folder, tmp_path):
    from interp.analysis.language.tokens import prompt_tokens, run_vocabulary

    run = import_model(f"hf:{gpt2_folder[0]}", "g", root=tmp_path, progress=False)
    vocab = run_vocabulary(run)
    assert len(vocab) == 31 and vocab.bos == 0 and vocab.decode(prompt_tokens(run, "abc")) == "abc"
    with pytest.raises(InterpError, match="context is 64"):
        prompt_tokens(run, "a" * 65)


def test_hf_folder_without_a_tokenizer_or_weights_is_named(gpt2_folder, tmp_path):
    import shutil

    broken = tmp_path / "no-tokenizer"
    shutil.copytree(gpt2_folder[0], broken)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (broken / f).unlink()
    with pytest.raises(InterpError, match="no tokenizer"):
        import_model(f"hf:{broken}", "g", root=tmp_path)
    with pytest.raises(InterpError, match="no folder"):
        import_model(f"hf:{tmp_path / 'missing'}", "g", root=tmp_path)
    assert not (tmp_path / "g").exists()


def test_cli_hf_heads_attention_lens_tokens_composition(cli, gpt2_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("import", f"hf:{gpt2_folder[0]}", "--name", "g")
    assert code == 0 and "31 tokens in the tokenizer, context 64" in out, err
    for argv in (["heads", "--sequences", "4"], ["attention", "--prompt", "hello"], ["lens", "--prompt", "hello"],
                 ["attribute", "tokens", "--prompt", "hello", "--steps", "4"], ["composition"],
                 ["ablate", "--sequences", "4"], ["sample", "--tokens", "5", "--prompt", "he"]):
        code, out, err = cli(*argv, "--run", "g")
        assert code == 0, (argv, err)
    from interp.runs import load_run

    assert hook_count(load_run(tmp_path / "models" / "g").model) == 0
    assert (tmp_path / "reports" / "g" / "transformer" / "heads.json").is_file()


def test_results_of_dotted_layer_names_round_trip(tmp_path, image_folder):
    """`with_suffix` would turn class-units-layer1.0.conv1 into class-units-layer1.0.json."""
    from interp.analysis.attribution.units import class_unit_summary
    from interp.results.attribution import load_class_unit_summary, save_class_unit_summary

    from interp.imports import Preprocessing

    run = import_model("torchvision:resnet18", "r", weights="random", num_classes=2, root=tmp_path,
                       dataset=str(image_folder), progress=False, classes=["cat", "golden retriever"],
                       preprocessing=Preprocessing((0.5,) * 3, (0.25,) * 3, resize=36, crop=32))
    data = run.load_data(progress=False)
    summary = class_unit_summary(run, "layer1.0.conv1", per_class=1, steps=2, data=data)
    paths = save_class_unit_summary(summary, tmp_path / "out")
    assert paths["json"].name == "class-units-layer1.0.conv1.json" and paths["npz"].exists()
    torch.testing.assert_close(load_class_unit_summary(paths["json"]).matrix, summary.matrix)
    torch.testing.assert_close(load_class_unit_summary(tmp_path / "out" / "class-units-layer1.0.conv1").matrix,
                               summary.matrix)


def test_wrong_class_count_and_image_options_on_an_lm_are_refused(tmp_path, cli, gpt2_folder):
    with pytest.raises(InterpError, match="2 class names for a classifier with 3 outputs"):
        import_model("torchvision:resnet18", "r", weights="random", num_classes=3, classes=["a", "b"],
                     root=tmp_path)
    code, _, err = cli("import", f"hf:{gpt2_folder[0]}", "--name", "x", "--size", "64")
    assert code == 2 and "apply to image classifiers" in err
