"""Image files in and out: loading (EXIF rotation, colour, alpha), the alpha plane, safe writes, the Pillow plugin."""
