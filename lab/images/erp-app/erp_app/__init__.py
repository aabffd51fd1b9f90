"""Reference ERP service for the erp.ops lab: FastAPI + PostgreSQL.

Only ``web`` and ``server`` import FastAPI/uvicorn and only ``db``, ``migrate`` and
``repository`` import psycopg2, so the pure modules (config, versions, migrations, faults, health,
metrics, lifecycle) stay importable and unit-testable without those packages.
"""

SERVICE_ID = "erp-app"
