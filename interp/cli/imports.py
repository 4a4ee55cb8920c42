"""``interp import``: a user's own model as a run folder (:mod:`interp.imports`)."""

from __future__ import annotations

import argparse

from .common import int_in


def register(sub, common) -> None:
    p = sub.add_parser(
        "import", parents=[common], help="bring your own model: torchvision or timm classifiers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write models/NAME/ for a model trained elsewhere (config.json naming the source, its\n"
                    "preprocessing and classes; the weights as safetensors), so every command and the report\n"
                    "take --run NAME. Weights: --weights FILE (a state dict: .safetensors, or a torch file read\n"
                    "with weights_only=True, never unpickled), --download (the library's own, online only) or\n"
                    "--weights random. Preprocessing (mean, std, resize, crop) and ImageNet's class names come\n"
                    "from the library's metadata, without a download.",
        epilog="examples:\n"
               "  interp import torchvision:resnet18 --name resnet18 --download --dataset ~/imagenet-sample\n"
               "  interp import torchvision:resnet18 --name pets --weights finetuned.pt --classes pets.txt \\\n"
               "      --dataset ~/pets            # a fine-tuned head: the classes are read from the weights\n"
               "  interp import torchvision:vgg19 --name vgg19 --weights vgg19.safetensors\n"
               "  interp import timm:vit_tiny_patch16_224 --name vit --download   # pip install 'interp[timm]'\n"
               "  interp import torchvision:resnet18 --name smoke --weights random --num-classes 10\n"
               "then:\n"
               "  interp visualize --run resnet18 --layer layer3.1.conv2 --units 0-7\n"
               "  interp report --run resnet18 --layers layer2,layer3\n"
               "\nimage folders: FOLDER/test/<class>/*, FOLDER/val/<class>/* or FOLDER/<class>/*; class folders\n"
               "are matched to the model's classes by name, else by sorted order when the counts agree")
    p.add_argument("source", help="torchvision:ARCH or timm:NAME (e.g. torchvision:resnet18)")
    p.add_argument("--name", required=True, help="the run name (models/NAME)")
    p.add_argument("--weights", metavar="FILE", help="a state-dict file (.safetensors, .pt, .pth), or 'random'")
    p.add_argument("--download", action="store_true", help="fetch the library's pretrained weights (online)")
    p.add_argument("--classes", metavar="FILE", help="class names, one per line (default: the library's, "
                                                     "else class0, class1, ...)")
    p.add_argument("--num-classes", type=int_in(1, 100_000), help="classifier outputs (default: from the weights)")
    p.add_argument("--dataset", metavar="FOLDER", help="an image folder for examples, attribution and claims")
    p.add_argument("--size", type=int_in(16, 1024), help="crop size (default: the library's, usually 224)")
    p.add_argument("--resize", type=int_in(16, 2048), help="shorter side before the crop (default: the library's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run of that name")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from dataclasses import replace

    from ..imports import import_model, library_preprocessing, parse_source

    from ..errors import InterpError

    preprocessing = None
    family, arch = parse_source(args.source)
    if family == "hf" and (args.size or args.resize or args.classes or args.dataset or args.num_classes):
        raise InterpError("--size, --resize, --classes, --dataset and --num-classes apply to image classifiers "
                          "(torchvision:, timm:), not to hf: language models")
    if args.size or args.resize:
        base, _ = library_preprocessing(family, arch)
        crop = args.size or base.crop
        preprocessing = replace(base, crop=crop, resize=args.resize or max(crop, round(crop * base.resize / base.crop)))
    run = import_model(args.source, args.name, weights=args.weights, download=args.download, classes=args.classes,
                       dataset=args.dataset, num_classes=args.num_classes, preprocessing=preprocessing,
                       overwrite=args.overwrite)
    if run.config.task == "language-model":
        cfg = run.config.model_config
        print(f"{run.name}: {args.source}, {len(run.tokenizer)} tokens in the tokenizer, context {cfg['block_size']}. "
              f"Next: interp heads --run {run.name}; interp lens --run {run.name} --prompt 'The cat'")
        return 0
    convs = [layer.name for layer in run.layers if layer.kind == "conv"]
    print(f"{run.name}: {args.source}, {len(run.classes)} classes, input {run.input_shape}, "
          f"{len(run.layers)} layers ({len(convs)} conv). Layers: interp visualize --run {run.name} --layer "
          f"{convs[len(convs) // 2] if convs else run.layers[0].name}")
    return 0
