"""Orchestration: Prefect flows tracked in MLflow. The ``molvae`` library never imports this package."""
