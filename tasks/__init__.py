"""Thin Prefect tasks around layerflow_model and data_recipes, with MLflow tracking."""
