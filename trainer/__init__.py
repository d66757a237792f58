"""FieldLens trainer: owns TensorFlow. Data pipeline, SSD models, training, evaluation, export."""
