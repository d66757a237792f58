"""Pascal VOC datasets: safe archive reading, annotation parsing, validation, lint, synthesis."""
