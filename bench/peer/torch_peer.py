#!/usr/bin/env python3
"""PyTorch side of `npm run bench -- peer`, run as a PyTorch user runs it; prints one JSON object.

  --task profile  PIL alone, one image at a time on one thread: CPU per image to decode, and to
                  decode + EXIF-transpose + convert RGB + resize bilinear (from bytes in memory);
                  optionally the resized pixels of the first images, for comparing outputs.
  --task loader   a DataLoader (worker processes, PIL bilinear, PILToTensor, batches) over the files.
  --task model    torchvision's MobileNetV2 in eval mode under torch.inference_mode(), NCHW and
                  channels_last, torch.set_num_threads(N), warm-up batches excluded; with torch's
                  build configuration and the kernels one batch spent its time in.

Needs Debian's packages as they install (apt-get install -y python3-torch python3-torchvision), no
extra BLAS: convolutions run on oneDNN, which does not use BLAS. MobileNetV2 runs with random weights
(nothing is downloaded; speed does not depend on the weights). `profile` imports PIL only.
"""
import argparse
import io
import json
import os
import platform
import time

from PIL import Image, ImageOps


def read_paths(listing):
    with open(listing, encoding="utf-8") as lines:
        return [line.strip() for line in lines if line.strip()]


def pil_rgb(source):
    """What rxcnn's decode does before resizing: EXIF orientation applied, 3 channels."""
    with Image.open(source) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def profile(paths, args):
    files = [open(path, "rb").read() for path in paths[: args.profile_images]]

    def decode(data):
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    def decode_resize(data):
        return pil_rgb(io.BytesIO(data)).resize((args.size, args.size), Image.BILINEAR)

    stages = {}
    for name, stage in (("decode", decode), ("decodeResize", decode_resize)):
        for data in files:  # warm-up
            stage(data)
        start = time.process_time()
        for data in files:
            stage(data)
        stages[name] = (time.process_time() - start) / len(files)
    if args.pixels_out:
        with open(args.pixels_out, "wb") as out:
            for data in files[: args.pixels_images]:
                out.write(decode_resize(data).tobytes())
    return {"pillow": Image.__version__, "images": len(files), "cpuSecondsPerImage": stages}


def loader(paths, args):
    import torch  # noqa: F401 (DataLoader needs it; imported here so `profile` stays PIL-only)
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    class Files(Dataset):
        def __init__(self, transform):
            self.transform = transform

        def __len__(self):
            return len(paths)

        def __getitem__(self, index):
            return self.transform(pil_rgb(paths[index])), 0

    # squash to size×size, uint8 CHW like rxcnn's uint8 HWC batches: no float conversion on either side.
    transform = transforms.Compose([transforms.Resize((args.size, args.size), interpolation=InterpolationMode.BILINEAR), transforms.PILToTensor()])
    data = DataLoader(Files(transform), batch_size=args.batch, num_workers=args.workers, persistent_workers=args.workers > 0, shuffle=False)
    passes = []
    for index in range(args.passes + 1):  # pass 0 is the warm-up: worker start, page cache
        start = time.perf_counter()
        images = sum(batch.shape[0] for batch, _ in data)
        seconds = time.perf_counter() - start
        if index > 0:
            passes.append(images / seconds)
    return {"workers": args.workers, "batch": args.batch, "interpolation": "bilinear", "images": len(paths), "imagesPerSecondPasses": passes}


def build_config(torch):
    """The lines of torch's build configuration that decide CPU inference speed, as one line."""
    shown = torch.__config__.show()
    keep = [line.strip(" -") for line in shown.splitlines() if any(key in line for key in ("MKL-DNN", "oneDNN", "CPU capability", "OpenMP"))]
    settings = dict(item.strip().split("=", 1) for item in shown.split("Build settings:", 1)[-1].split(",") if "=" in item)
    keep += [f"{key}={settings[key]}" for key in ("BLAS_INFO", "USE_MKLDNN", "USE_OPENMP") if key in settings]
    return "; ".join(keep)


def count_flops(torch, model, size):
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


def kernels(torch, model, x):
    """The operators one batch spent its CPU time in, most first, with their shares."""
    from torch.profiler import ProfilerActivity, profile as profiler

    with torch.inference_mode(), profiler(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "share": e.self_cpu_time_total / total} for e in events[:5]]


def model_runs(args):
    import torch
    import torchvision

    result = {"torch": torch.__version__, "torchvision": torchvision.__version__, "buildConfig": build_config(torch), "blas": blas_library(), "runs": []}
    for width in (float(w) for w in args.widths.split(",")):
        net = torchvision.models.mobilenet_v2(weights=None, width_mult=width).eval()
        flops = count_flops(torch, net, args.size)
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for memory_format in ("nchw", "channels_last"):
                x = torch.randn(args.batch, 3, args.size, args.size)
                model = net
                if memory_format == "channels_last":
                    model = net.to(memory_format=torch.channels_last)
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    for _ in range(args.warmup_batches):
                        model(x)
                    start = time.perf_counter()
                    for _ in range(args.model_batches):
                        model(x)
                    seconds = time.perf_counter() - start
                images_per_second = args.batch * args.model_batches / seconds
                run = {"width": width, "threads": threads, "memoryFormat": memory_format, "imagesPerSecond": images_per_second, "flopsPerImage": flops, "gflopsPerSecond": images_per_second * flops / 1e9}
                if threads == max(int(t) for t in args.threads.split(",")):
                    run["kernels"] = kernels(torch, model, x)
                result["runs"].append(run)
                net.to(memory_format=torch.contiguous_format)  # Module.to converts in place: back to NCHW for the next run
    return result


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
    parser.add_argument("--task", choices=["profile", "loader", "model"], required=True)
    parser.add_argument("--files", help="text file with one image path per line (profile, loader)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", default=str(os.cpu_count() or 1), help="comma-separated torch.set_num_threads values (default: the cores)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--passes", type=int, default=1, help="timed DataLoader passes after one warm-up pass")
    parser.add_argument("--widths", default="1.0,0.5", help="comma-separated MobileNetV2 width multipliers")
    parser.add_argument("--warmup-batches", type=int, default=3)
    parser.add_argument("--model-batches", type=int, default=8)
    parser.add_argument("--profile-images", type=int, default=300)
    parser.add_argument("--pixels-out", help="profile: write the first --pixels-images resized images here, raw RGB")
    parser.add_argument("--pixels-images", type=int, default=50)
    args = parser.parse_args()

    result = {"python": platform.python_version()}
    if args.task == "model":
        result.update(model_runs(args))
    else:
        if not args.files:
            parser.error(f"--task {args.task} needs --files")
        paths = read_paths(args.files)
        result.update(profile(paths, args) if args.task == "profile" else loader(paths, args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
