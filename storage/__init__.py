"""FieldLens storage: the domain model, SQLite, the file store and Pascal VOC datasets.

Every FieldLens process may import this package; it never imports TensorFlow or discord.
"""

# The FieldLens version (pyproject.toml says the same): here, in the package every process imports,
# so that the trainer can stamp it into models without importing the CLI.
__version__ = "0.1.0"
