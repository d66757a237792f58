"""FieldLens Discord bot and its web server. Never imports TensorFlow or the trainer."""
