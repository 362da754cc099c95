"""The image encoders' speed: ``python -m hmr_core.bench encoder``, images per second.

``encoder`` times one forward + backward pass of each image encoder (ResNet-18, ResNet-50,
EfficientNet-Lite0) at several input sizes, in the training's memory layouts, with the first blocks
frozen or not: the levers for the most accuracy per CPU hour. ResNet-18 at 112 pixels (the size of the
earlier CPU model) is the baseline of each run.
"""

import datetime
from typing import NamedTuple

import torch

from hmr_core.bench import _time
from hmr_core.evaluate import device_name


class EncoderBenchRow(NamedTuple):
    encoder: str
    input_size: int
    channels_last: bool
    frozen_blocks: int
    images_per_s: float


def bench_encoder(configs=(("resnet18", 112, False, 0), ("resnet18", 128, True, 0), ("resnet50", 128, True, 0),
                           ("efficientnet_lite0", 128, False, 0), ("efficientnet_lite0", 128, True, 0),
                           ("efficientnet_lite0", 128, True, 3), ("efficientnet_lite0", 160, True, 3),
                           ("efficientnet_lite0", 224, True, 3)),
                  batch_size=32, repeats=5, device="cpu") -> list[EncoderBenchRow]:
    """Images per second of an encoder's forward + backward pass in training mode.

    Args:
        configs: (encoder, input size, channels-last, frozen first blocks (Lite0 only)) per row.
        batch_size: images per pass.
        repeats: timed passes per row (the median counts, after three untimed ones).
        device: "cpu" or "cuda".

    Returns:
        one ``EncoderBenchRow`` per config, also printed.
    """
    from hmr_core.encoder import build_encoder

    device = torch.device(device)
    print(f"encoder forward+backward, batch {batch_size}, {device_name(device)}, torch {torch.__version__}, "
          f"{datetime.date.today().isoformat()}")
    print(f"{'encoder':>20} {'size':>5} {'layout':>13} {'frozen':>6} {'img/s':>8} {'vs r18@112':>11}")
    rows, baseline = [], None
    for arch, size, channels_last, frozen in configs:
        torch.manual_seed(0)
        encoder = build_encoder(arch).to(device).train()
        if frozen:
            encoder.freeze_first_blocks(frozen)
        images = torch.randn(batch_size, 3, size, size, device=device)
        if channels_last:
            encoder, images = encoder.to(memory_format=torch.channels_last), images.contiguous(
                memory_format=torch.channels_last)

        def step():
            encoder.zero_grad(set_to_none=True)
            encoder(images).square().mean().backward()

        seconds = _time([step], repeats, device)[0] / 1e3  # median, after warm-up
        rate = batch_size / seconds
        baseline = rate if baseline is None else baseline
        rows.append(EncoderBenchRow(arch, size, channels_last, frozen, rate))
        print(f"{arch:>20} {size:>5} {'channels-last' if channels_last else 'NCHW':>13} {frozen:>6} {rate:>8.1f} "
              f"{rate / baseline:>10.2f}x", flush=True)
    return rows
