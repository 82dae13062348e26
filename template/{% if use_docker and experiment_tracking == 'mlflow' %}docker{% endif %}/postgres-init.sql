-- Run once, when the PostgreSQL volume is created: the database of the shared Optuna studies, beside
-- MLflow's (`POSTGRES_DB`). Each keeps its own tables and migrations.
CREATE DATABASE optuna;
