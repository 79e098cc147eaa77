"""molvae: molecular generation with variational autoencoders."""

__version__ = "0.1.0"
