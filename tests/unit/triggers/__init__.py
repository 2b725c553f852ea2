"""Tests of the Airflow triggers."""
