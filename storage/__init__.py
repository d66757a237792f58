"""FieldLens storage: the domain model, SQLite, the file store and Pascal VOC datasets.

Every FieldLens process may import this package; it never imports TensorFlow or discord.
"""
