"""Image batches and augmentation: ``python -m pytest tests/data/test_images.py``."""

import torch

from src.data.images import ImageBatches, ImageDataModule, ImageSplits


def _splits(n=64):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 4
    return ImageSplits(
        (images, labels), (images[:8], labels[:8]), (images[:16], labels[:16]), ["a", "b", "c", "d"]
    )


def test_normalisation_uses_the_training_split_only():
    dm = ImageDataModule(_splits)
    dm.setup()
    train = dm.splits.train[0].float() / 255
    torch.testing.assert_close(dm.mean, train.mean(dim=(0, 2, 3)))
    batch = dm.dataset("test").__getitems__(list(range(16)))
    assert (
        batch["x"].shape == (16, 3, 8, 8) and batch["y"].tolist() == (torch.arange(16) % 4).tolist()
    )


def test_augmentation_is_seeded_and_eval_is_not_augmented():
    images, labels = _splits().train
    mean, std = torch.zeros(3), torch.ones(3)
    data = ImageBatches(images, labels, mean, std, crop_padding=2, hflip=True, augment=True)
    torch.manual_seed(1)
    first = data.__getitems__(list(range(32)))["x"]
    torch.manual_seed(1)
    torch.testing.assert_close(data.__getitems__(list(range(32)))["x"], first)
    plain = ImageBatches(images, labels, mean, std, crop_padding=2, hflip=True)
    assert torch.equal(plain.__getitems__([0])["x"][0], images[0].float() / 255)
    assert not torch.equal(first, plain.__getitems__(list(range(32)))["x"])
