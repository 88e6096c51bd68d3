#!/usr/bin/env python3
"""PyTorch side of `npm run bench -- peer`: times a DataLoader with PIL/torchvision transforms over
a list of JPEGs, and torchvision's MobileNetV2 inference, and prints one JSON object.

Self-contained: needs python3 with torch and torchvision (Debian: apt-get install -y python3-torch
python3-torchvision libopenblas0-openmp; without OpenBLAS, Debian's torch runs its 1×1 convolutions
on the reference BLAS, about 5× slower, so the output names the BLAS in use). MobileNetV2 runs with random weights (nothing is downloaded; speed does not
depend on the weights).
"""
import argparse
import io
import json
import os
import platform
import time

import torch
import torchvision
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.transforms import InterpolationMode

INTERPOLATIONS = {"lanczos": InterpolationMode.LANCZOS, "bilinear": InterpolationMode.BILINEAR}


class JpegList(Dataset):
    """The given files, opened with PIL, EXIF orientation applied (as rxcnn's decode does), RGB."""

    def __init__(self, paths, transform):
        self.paths = paths
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with Image.open(self.paths[index]) as image:
            rgb = ImageOps.exif_transpose(image).convert("RGB")
        return self.transform(rgb), 0


def resize_transform(size, mode, interpolation):
    if mode == "squash":
        resize = [transforms.Resize((size, size), interpolation=interpolation)]
    else:
        resize = [transforms.Resize(round(size / 0.875), interpolation=interpolation), transforms.CenterCrop(size)]
    # uint8 CHW, like rxcnn's uint8 HWC batches: no float conversion on either side.
    return transforms.Compose(resize + [transforms.PILToTensor()])


def time_loader(paths, args, interpolation):
    loader = DataLoader(
        JpegList(paths, resize_transform(args.size, args.resize, INTERPOLATIONS[interpolation])),
        batch_size=args.batch,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        shuffle=False,
    )
    passes = []
    for index in range(args.passes + 1):  # pass 0 is the warm-up: worker start, page cache
        start = time.perf_counter()
        images = sum(batch.shape[0] for batch, _ in loader)
        seconds = time.perf_counter() - start
        if index > 0:
            passes.append(images / seconds)
    return {"interpolation": interpolation, "images": len(paths), "imagesPerSecondPasses": passes, "imagesPerSecond": sum(passes) / len(passes)}


def count_flops(model, size):
    """Multiply-adds of convolutions and linear layers for one image, times two."""
    macs = [0]

    def conv_hook(module, inputs, output):
        kh, kw = module.kernel_size
        macs[0] += output.numel() // output.shape[0] * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module, inputs, output):
        macs[0] += module.in_features * module.out_features

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return 2 * macs[0]


def time_model(width, threads, args):
    torch.set_num_threads(threads)
    model = torchvision.models.mobilenet_v2(weights=None, width_mult=width).eval()
    flops = count_flops(model, args.size)
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.inference_mode():
        for _ in range(args.warmup_batches):
            model(x)
        start = time.perf_counter()
        for _ in range(args.model_batches):
            model(x)
        seconds = time.perf_counter() - start
    images_per_second = args.batch * args.model_batches / seconds
    return {
        "width": width,
        "threads": threads,
        "batch": args.batch,
        "batches": args.model_batches,
        "imagesPerSecond": images_per_second,
        "flopsPerImage": flops,
        "gflopsPerSecond": images_per_second * flops / 1e9,
    }


def profile_pil(paths, size, count):
    """One image at a time in this process: CPU seconds per image to decode, and to decode + resize."""
    files = [open(path, "rb").read() for path in paths[:count]]

    def decode(data):
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    def decode_resize(data):
        with Image.open(io.BytesIO(data)) as image:
            rgb = ImageOps.exif_transpose(image).convert("RGB")
        rgb.resize((size, size), Image.LANCZOS)

    stages = {}
    for name, stage in (("decode", decode), ("decodeResize", decode_resize)):
        for data in files:  # warm-up
            stage(data)
        start = time.process_time()
        for data in files:
            stage(data)
        stages[name] = (time.process_time() - start) / len(files)
    return {"images": len(files), "cpuSecondsPerImage": stages}


def blas_library():
    """The BLAS shared library torch loaded (Linux), else 'unknown'."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            found = sorted({line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1]})
        return ", ".join(os.path.realpath(path) for path in found) or "none loaded"
    except OSError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", required=True, help="text file with one JPEG path per line, or a folder (searched recursively)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--resize", choices=["squash", "center-crop"], default="squash")
    parser.add_argument("--interpolations", default="lanczos,bilinear", help="comma-separated: lanczos (sharp's default kernel), bilinear (torchvision's)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", default="2,1", help="comma-separated intra-op thread counts for the model")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--passes", type=int, default=2, help="timed DataLoader passes after one warm-up pass")
    parser.add_argument("--widths", default="1.0,0.5", help="comma-separated MobileNetV2 width multipliers")
    parser.add_argument("--warmup-batches", type=int, default=2)
    parser.add_argument("--model-batches", type=int, default=8)
    parser.add_argument("--skip", choices=["none", "loader", "model"], default="none")
    parser.add_argument("--profile-images", type=int, default=300, help="images for the one-at-a-time per-stage CPU profile (0: none)")
    args = parser.parse_args()

    if os.path.isdir(args.files):
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(args.files) for f in fs if f.lower().endswith((".jpg", ".jpeg")))
    else:
        with open(args.files, encoding="utf-8") as listing:
            paths = [line.strip() for line in listing if line.strip()]
    if not paths:
        parser.error(f"no JPEGs in {args.files}")

    result = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": Image.__version__,
        "blas": blas_library(),
        "size": args.size,
        "resize": args.resize,
        "loader": {"workers": args.workers, "batch": args.batch, "passes": []},
        "model": [],
        "profile": profile_pil(paths, args.size, args.profile_images) if args.profile_images > 0 else None,
    }
    if args.skip != "loader":
        result["loader"]["passes"] = [time_loader(paths, args, name) for name in args.interpolations.split(",")]
    if args.skip != "model":
        result["model"] = [time_model(float(w), int(t), args) for w in args.widths.split(",") for t in args.threads.split(",")]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
