"""Issue #16: users' own models. Seconds to import a torchvision ResNet-18 and to write its
report on 100 images; heads + lens on a 2-layer GPT-2 imported from a Hugging Face folder.

    python benchmarks/imports.py [--size 224] [--steps 64] [--layers layer1.0.conv1,layer4.1.conv2] [--only gpt2]

The 100 images are CIFAR-10 test images from ../shared/data/cifar10-jpeg (10 per class, a
seeded stratified choice), resized and cropped as torchvision does for ResNet-18; the
weights are random (the figure is time, not accuracy). The GPT-2 is built locally
(GPT2Config(n_layer=2, n_head=4, n_embd=64), random weights, a character tokenizer).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg"


def image_folder(out: Path, per_class: int = 10) -> Path:
    from interp.data.images import _list_split
    from interp.data.samples import stratified_sample

    import torch

    classes, files = _list_split(SHARED / "test")
    labels = torch.tensor([label for _, label in files])
    keep = stratified_sample(labels, per_class * len(classes), seed=0)
    for i in keep.indices.tolist():
        source, label = files[i]
        (out / classes[label]).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, out / classes[label] / Path(source).name)
    return out


def gpt2_folder(out: Path) -> Path:
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(["<|endoftext|>", *"abcdefghijklmnopqrstuvwxyz .,\n"])}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    raw.pre_tokenizer, raw.decoder = pre_tokenizers.Split("", "isolated"), decoders.Fuse()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|endoftext|>",
                                               eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=64, vocab_size=len(vocab), n_positions=64,
                                  bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def timed(what: str, fn):
    t0 = time.perf_counter()
    result = fn()
    print(f"{what}: {time.perf_counter() - t0:.1f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224, help="crop size (default 224, torchvision's)")
    parser.add_argument("--steps", type=int, default=64, help="feature-visualisation steps (default 64)")
    parser.add_argument("--layers", default="layer1.0.conv1", help="report layers (default layer1.0.conv1)")
    parser.add_argument("--only", choices=("resnet18", "gpt2"), help="one half of the benchmark")
    args = parser.parse_args()
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on

    from interp.analysis.language.heads import head_scores
    from interp.analysis.language.lens import logit_lens
    from interp.analysis.language.tokens import prompt_tokens
    from interp.imports import Preprocessing, import_model
    from interp.pipelines.report import build_report

    work = Path(tempfile.mkdtemp(prefix="interp-imports-"))
    if args.only == "gpt2":
        pass
    elif SHARED.is_dir():
        images = image_folder(work / "images")
        classes = sorted(p.name for p in images.iterdir())
        pre = Preprocessing((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), round(args.size * 256 / 224), args.size)
        run = timed("import torchvision:resnet18 (random weights)",
                    lambda: import_model("torchvision:resnet18", "r18", weights="random", classes=classes,
                                         dataset=str(images), root=work / "models", preprocessing=pre,
                                         progress=False))
        timed(f"report of resnet18 on 100 images at {args.size} px, layers {args.layers}, {args.steps} steps",
              lambda: build_report(run, out=work / "report", layers=args.layers.split(","), steps=args.steps,
                                   device="cpu", progress=False, log=None))
    else:
        print(f"skipped the ResNet-18 figures: {SHARED} is absent")
    if args.only == "resnet18":
        return
    folder = gpt2_folder(work / "gpt2")
    run = timed("import hf: 2-layer GPT-2", lambda: import_model(f"hf:{folder}", "g2", root=work / "models",
                                                                 progress=False))
    timed("heads (64 sequences) on the 2-layer GPT-2", lambda: head_scores(run, n_sequences=64))
    timed("logit lens on a 40-token prompt", lambda: logit_lens(run, prompt_tokens(run, "to be or not to be, that is "
                                                                                   "the question")))


if __name__ == "__main__":
    main()
