-- Runs once, on the first start of an empty data volume (as POSTGRES_USER, who owns the databases).
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
-- MLflow's basic-auth store gets its own database: its tables (users, roles, ...) and migrations
-- are independent of the tracking store's, so keeping them apart avoids any name clash.
CREATE DATABASE mlflow_auth;
