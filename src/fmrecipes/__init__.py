"""fmrecipes: foundation-model training recipes, each faithful to its paper."""

__version__ = "0.1.0"
