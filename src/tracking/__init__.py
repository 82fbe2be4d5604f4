"""MLflow tracking: runs we own end to end, and the model artifact."""
