"""Tests of the Airflow operators."""
