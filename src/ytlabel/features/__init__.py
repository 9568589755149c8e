"""Stage 2: autoencoder expansion of the 1152-d features into a wider, framework-neutral code."""
