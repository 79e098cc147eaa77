"""Image datasets: IDX and image-folder readers, and the Fashion-MNIST source."""
