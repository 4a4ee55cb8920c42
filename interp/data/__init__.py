"""Datasets: images (shapes, CIFAR-10, image folders) and text."""

from .images import ImageData, denormalize, load_image_data, load_image_folder, normalize

__all__ = ["ImageData", "denormalize", "load_image_data", "load_image_folder", "normalize"]
